"""What the guard role costs on real Linux guests, measured side by side in one run.

1. Per host: the guarded change (restore point, change over SSH, health check, restore point
   removed) divided by the same change and health check without the guard.
2. A batch of 3 guarded hosts divided by a batch of 1: the restore points of a batch are one
   bulk task, so the batch should cost close to one host, not three.

Every figure is the median of --runs ansible-playbook runs, in alternating order; prints
ratios and the medians. Not a test: nothing here asserts a time.

    .venv/bin/python benchmarks/guard_overhead.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))

from scripts.ansible_run import run_playbook  # noqa: E402
from services.linux_guest import start_guests  # noqa: E402

HERE = Path(__file__).resolve().parent / 'guard'
CHANGE = REPO / 'tests' / 'integration' / 'playbooks' / 'guard' / 'linux_change.yml'


def inventory(path: Path, guests) -> Path:
    hosts = {}
    for index, guest in enumerate(guests, 1):
        hostvars = guest.inventory_vars()
        hostvars.update(savepoint_provider='libvirt', savepoint_guest=guest.name,
                        savepoint_connection={'uri': 'qemu:///system'})
        hosts['web%d' % index] = hostvars
    path.write_text(json.dumps({'all': {'hosts': hosts}}))
    return path


def timed(playbook: Path, inv: Path, limit: str) -> float:
    extra = {'guard_change_tasks': str(CHANGE),
             # from the controller, so the guests need no Python (raw change, no module inside)
             'guard_health_checks': [{'port': '{{ ansible_port }}', 'delegate_to': 'localhost'}],
             'guard_wait_for_connection': False}
    start = time.monotonic()
    run = run_playbook(playbook, extra, env={'ANSIBLE_INVENTORY': str(inv), 'ANSIBLE_LIMIT': limit})
    seconds = time.monotonic() - start
    if run.rc != 0:
        raise SystemExit('%s failed (rc %d): %s' % (playbook.name, run.rc, run.stderr[-2000:]))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    with start_guests(3, prefix='sp-bench-guard') as guests:
        inv = inventory(Path('/tmp') / ('%s-inventory.json' % guests[0].name), guests)
        cases = {'unguarded, 1 host': (HERE / 'unguarded.yml', 'web1'),
                 'guarded, 1 host': (HERE / 'guarded.yml', 'web1'),
                 'guarded, batch of 3': (HERE / 'guarded.yml', 'web1,web2,web3')}
        times: Dict[str, List[float]] = {name: [] for name in cases}
        for round_no in range(args.runs):
            order = list(cases) if round_no % 2 == 0 else list(reversed(cases))
            for name in order:
                playbook, limit = cases[name]
                times[name].append(timed(playbook, inv, limit))
        inv.unlink()
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print('%-22s median %6.2fs  (%s)' % (name, value, ', '.join('%.2f' % v for v in times[name])))
    print('guarded / unguarded, per host: %.2f' % (median['guarded, 1 host'] / median['unguarded, 1 host']))
    print('batch of 3 / batch of 1 (guarded): %.2f' % (median['guarded, batch of 3'] / median['guarded, 1 host']))
    return 0


if __name__ == '__main__':
    sys.exit(main())

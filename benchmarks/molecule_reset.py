"""Molecule create: reset by revert vs rebuild, side by side on the same real Linux guest.

  revert   `savepoint.virt.molecule_create` as molecule runs it (ansible-playbook, the role,
           molecule's variables): revert the guest to its baseline restore point (taken once,
           with memory), wait for SSH, write the instance config. Before each round the guest is
           changed (a file written), so every revert has something to undo.
  engine   the same revert without Ansible (the collection's engine and libvirt backend called from
           Python, then SSH awaited): like for like with `rebuild`, which has no Ansible either.
  rebuild  what a create without restore points does: remove the guest, define a new one from
           its image (fresh copy of the data disk) and boot it until SSH answers.
Both end when the guest's SSH server answers. Alternating order, median of N each; prints the
ratio. Not a test: nothing here asserts a time.

    .venv/bin/python benchmarks/molecule_reset.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))

from conftest import COLLECTIONS_ROOT  # noqa: E402,F401  (links ansible_collections.savepoint.virt)
from scripts.ansible_run import collection_env  # noqa: E402
from services.linux_guest import LinuxGuest  # noqa: E402

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend  # noqa: E402
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine  # noqa: E402
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef  # noqa: E402

BASELINE = 'savepoint-molecule-baseline'


def platforms(guest: LinuxGuest) -> list:
    return [{'name': 'instance', 'savepoint': {
        'provider': 'libvirt', 'guest': guest.name, 'connection': {'uri': 'qemu:///system'},
        'address': '127.0.0.1', 'port': guest.ssh_port, 'user': 'root', 'identity_file': str(guest.key_file)}}]


def molecule_create(guest: LinuxGuest, workdir: Path) -> float:
    """ansible-playbook savepoint.virt.molecule_create with molecule's variables; seconds taken."""
    extra = workdir / 'molecule_vars.json'
    extra.write_text(json.dumps({'molecule_yml': {'platforms': platforms(guest)},
                                 'molecule_instance_config': str(workdir / 'instance_config.yml')}))
    env = collection_env()
    env.pop('ANSIBLE_PYTHON_INTERPRETER', None)
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), '-e', '@%s' % extra,
                           'savepoint.virt.molecule_create'], env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError('molecule_create failed:\n%s\n%s' % (proc.stdout[-3000:], proc.stderr[-2000:]))
    return took


def engine_revert(guest: LinuxGuest) -> float:
    started = time.monotonic()
    with LibvirtBackend({'uri': 'qemu:///system'}) as backend:
        SnapshotEngine(backend).run(Request(state='reverted', guests=[GuestRef(name=guest.name)],
                                            snapshot_name=BASELINE))
    guest.wait_ssh()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix='sp-bench-molecule-'))
    guest = LinuxGuest(prefix='sp-bench').start()
    times = {'revert': [], 'engine': [], 'rebuild': []}
    try:
        molecule_create(guest, workdir)  # first create: takes the baseline (not timed)
        for i in range(args.runs):
            for kind in (('revert', 'engine', 'rebuild') if i % 2 == 0 else ('rebuild', 'engine', 'revert')):
                if kind == 'revert':
                    guest.ssh('echo changed > /data/bench-%d && sync' % i)
                    times['revert'].append(molecule_create(guest, workdir))
                elif kind == 'engine':
                    guest.ssh('echo changed > /data/bench-%d && sync' % i)
                    times['engine'].append(engine_revert(guest))
                else:
                    started = time.monotonic()
                    guest.destroy()
                    guest = LinuxGuest(prefix='sp-bench')
                    guest.start()
                    times['rebuild'].append(time.monotonic() - started)
                    molecule_create(guest, workdir)  # the new guest's baseline, for the next revert (not timed)
                print('round %d %-7s %.1f s' % (i + 1, kind, times[kind][-1]), flush=True)
    finally:
        guest.destroy()
        for path in workdir.iterdir():
            path.unlink()
        os.rmdir(workdir)
    median = {kind: statistics.median(values) for kind, values in times.items()}
    labels = {'revert': 'molecule_create (revert, Ansible)', 'engine': 'revert + SSH (no Ansible)',
              'rebuild': 'rebuild + boot to SSH (no Ansible)'}
    for kind, values in times.items():
        print('%-36s median %5.1f s of %d (%s)' % (labels[kind], median[kind], len(values),
                                                   ', '.join('%.1f' % t for t in values)))
    print('ratio rebuild / revert, both without Ansible: %.1fx' % (median['rebuild'] / median['engine']))
    print('ratio rebuild / molecule_create playbook:     %.1fx' % (median['rebuild'] / median['revert']))
    return 0


if __name__ == '__main__':
    sys.exit(main())

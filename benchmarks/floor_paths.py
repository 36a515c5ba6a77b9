"""P2 of benchmarks/vmware_vs_community.py (distance from the floor) on both paths of the
snapshot modules' action plugin, side by side in one run on one vcsim.

Every call is one ansible-playbook task on localhost, interleaved: ping, the floor
(ansible.builtin.ping's work + import pyVmomi, as a module), ours on the controller path
(in-process, the default on localhost) and ours on the module path
(savepoint_live_progress=false), for vmware_snapshot_info by name+folder, uuid, moid.
Prints medians and ours / floor for both paths (target <= 1.15); asserts nothing.

    .venv/bin/python benchmarks/floor_paths.py [--runs 15] [--vms 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location('vmware_vs_community', HERE / 'vmware_vs_community.py')
vvc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vvc)  # links the collection, puts tests/ on sys.path


def tasks(bench: 'vvc.Bench', runs: int) -> List[dict]:
    out = []
    ours_in = bench.inputs(bench.ours_vm, False)
    for i in range(runs):
        out.append({'name': 'ping #%d' % i, 'ansible.builtin.ping': {}})
        out.append({'name': 'floor #%d' % i, 'pyvmomi_ping': {}})
        for key, guest in ours_in.items():
            out.append(bench.ours('vmware_snapshot_info', 'controller %s #%d' % (key, i), guest))
            module = bench.ours('vmware_snapshot_info', 'module %s #%d' % (key, i), guest)
            module['vars'] = {'savepoint_live_progress': False}
            out.append(module)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=15)
    parser.add_argument('--vms', type=int, default=5, help="vcsim -vm N (VMs per resource pool)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    server = vvc.VcsimServer(vms_per_pool=args.vms, start_timeout=600)
    server.start()
    try:
        bench = vvc.Bench(server)
        data: Dict[str, List[float]] = bench.play(tasks(bench, args.runs))
    finally:
        server.stop()
    med = statistics.median
    print('benchmarks/floor_paths.py: %d VMs on vcsim, %d calls per median, one ansible-playbook task each'
          % (server.vm_count, args.runs))
    for key in sorted(data):
        print('  %-24s median %6.3fs  (min %.3f, max %.3f)' % (key, med(data[key]), min(data[key]), max(data[key])))
    floor = med(data['floor'])
    print('P2, ours / floor (floor %.3fs; target <= 1.15):' % floor)
    for path in ('controller', 'module'):
        print('  %-10s %s' % (path, '; '.join('%s %.2f' % (key, med(data['%s %s' % (path, key)]) / floor)
                                              for key in ('name+folder', 'uuid', 'moid'))))
    print('wall time %.0fs' % (time.monotonic() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())

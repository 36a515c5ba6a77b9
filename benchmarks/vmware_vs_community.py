"""savepoint.virt's VMware provider against community.vmware, side by side on the same vcsim.

Every operation is a separate ansible-playbook task, as users run it (the time
of a task is what Ansible's JSON callback records for it: module transfer,
interpreter start, connect, work, logout). Rounds are interleaved (ours,
theirs, ours, ...) so that load from other jobs on the machine hits both
alike. Prints medians and the four ratios of issue 4; asserts nothing.

    .venv/bin/python benchmarks/vmware_vs_community.py [--runs 20] [--small 5] [--large 5000] [--bulk 100]

``--small N`` / ``--large N`` are vcsim's ``-vm N`` (N VMs per resource pool,
2N VMs in all). vcsim finishes every task inside the call, so this measures
round trips and client work, not waiting: waiting and progress can only be
exercised against the OpenStack services or in unit tests.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))

# importing conftest links ansible_collections.savepoint.virt to this checkout
import conftest  # noqa: E402,F401  pylint: disable=unused-import
from scripts.ansible_run import run_playbook  # noqa: E402
from services.vcsim import VcsimServer  # noqa: E402

DC = 'DC0'

#: The floor as one task: what ansible.builtin.ping does, plus a bare ``import pyVmomi``.
FLOOR_MODULE = '''#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
import pyVmomi  # noqa: F401  pylint: disable=unused-import


def main():
    AnsibleModule(argument_spec={}, supports_check_mode=True).exit_json(changed=False, ping='pong')


if __name__ == '__main__':
    main()
'''


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00')).timestamp()


def durations(run: Any) -> Dict[str, List[float]]:
    """Task name -> seconds per task (a name used for several tasks collects them all)."""
    found: Dict[str, List[float]] = {}
    for play in run.data.get('plays', []):
        for task in play.get('tasks', []):
            info = task['task']
            spent = parse_time(info['duration']['end']) - parse_time(info['duration']['start'])
            found.setdefault(info['name'].split(' #')[0], []).append(spent)
            for host, result in task.get('hosts', {}).items():
                if result.get('failed'):
                    raise RuntimeError('task %s failed on %s: %s' % (info['name'], host, result.get('msg')))
    return found


class Bench:
    def __init__(self, server: VcsimServer) -> None:
        self.server = server
        self.conn = {'hostname': server.host, 'port': server.port, 'username': 'user', 'password': 'pass',
                     'validate_certs': False}
        si = server.connect()
        index = si.RetrieveContent().searchIndex
        self.vms = {}
        for name in ('DC0_H0_VM0', 'DC0_H0_VM1'):
            vm = index.FindByInventoryPath('%s/vm/%s' % (DC, name))
            self.vms[name] = {'name': name, 'uuid': vm.config.uuid, 'moid': vm._moId}
        from pyVim.connect import Disconnect
        Disconnect(si)
        self.ours_vm, self.their_vm = self.vms['DC0_H0_VM0'], self.vms['DC0_H0_VM1']

    # -- task builders ---------------------------------------------------------------------------------
    def ours(self, module: str, name: str, guest: Dict[str, Any], **args: Any) -> Dict[str, Any]:
        params = dict(self.conn, datacenter=DC, honor_capability_flags=False, **guest)
        params.update(args)
        return {'name': name, 'savepoint.virt.%s' % module: params}

    def theirs(self, module: str, name: str, guest: Dict[str, Any], **args: Any) -> Dict[str, Any]:
        params = dict(self.conn, datacenter=DC, **guest)
        params.update(args)
        return {'name': name, 'community.vmware.%s' % module: params}

    @staticmethod
    def inputs(vm: Dict[str, str], community: bool) -> Dict[str, Dict[str, str]]:
        return {
            'name+folder': {'name': vm['name'], 'folder': '/%s/vm' % DC if community else '%s/vm' % DC},
            'uuid': {'uuid': vm['uuid']},
            'moid': {'moid': vm['moid']},
        }

    def play(self, tasks: List[Dict[str, Any]]) -> Dict[str, List[float]]:
        playbook = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / 'bench.yml'
            path.write_text(json.dumps(playbook))
            library = Path(tmp) / 'library'
            library.mkdir()
            (library / 'pyvmomi_ping.py').write_text(FLOOR_MODULE)
            run = run_playbook(path, timeout=7200, env={'ANSIBLE_LIBRARY': str(library)})
        if run.rc != 0:
            durations(run)   # raises with the failed task's message
            raise RuntimeError('ansible-playbook failed (rc %s): %s' % (run.rc, run.stderr[-2000:]))
        return durations(run)

    # -- measurements ----------------------------------------------------------------------------------------
    def lookups(self, runs: int) -> Dict[str, List[float]]:
        tasks = []
        ours_in, their_in = self.inputs(self.ours_vm, False), self.inputs(self.their_vm, True)
        for i in range(runs):
            tasks.append({'name': 'ping #%d' % i, 'ansible.builtin.ping': {}})
            tasks.append({'name': 'floor #%d' % i, 'pyvmomi_ping': {}})
            for key in ours_in:
                tasks.append(self.ours('vmware_snapshot_info', 'ours %s #%d' % (key, i), ours_in[key]))
                tasks.append(self.theirs('vmware_guest_snapshot_info', 'theirs %s #%d' % (key, i), their_in[key]))
        return self.play(tasks)

    def create_remove(self, runs: int) -> Dict[str, List[float]]:
        ours_in = self.inputs(self.ours_vm, False)['name+folder']
        their_in = self.inputs(self.their_vm, True)['name+folder']
        tasks = []
        for i in range(runs):
            tasks.append(self.ours('vmware_snapshot', 'ours create #%d' % i, ours_in, snapshot_name='b%d' % i))
            tasks.append(self.theirs('vmware_guest_snapshot', 'theirs create #%d' % i, their_in,
                                     snapshot_name='b%d' % i, state='present'))
        for i in range(runs):
            tasks.append(self.ours('vmware_snapshot', 'ours remove #%d' % i, ours_in, snapshot_name='b%d' % i,
                                   state='absent'))
            tasks.append(self.theirs('vmware_guest_snapshot', 'theirs remove #%d' % i, their_in,
                                     snapshot_name='b%d' % i, state='absent'))
        return self.play(tasks)

    def bulk(self, count: int, repeats: int) -> Dict[str, List[float]]:
        names = ['DC0_C0_RP0_VM%d' % i for i in range(count)]
        tasks = []
        for r in range(repeats):
            tasks.append(self.ours('vmware_snapshot', 'ours bulk #%d' % r, {}, guests=names,
                                   snapshot_name='bulk%d' % r))
        tasks.append({'name': 'theirs bulk', 'loop': names, 'community.vmware.vmware_guest_snapshot': dict(
            self.conn, datacenter=DC, folder='/%s/vm' % DC, name='{{ item }}', snapshot_name='bulk-c',
            state='present')})
        return self.play(tasks)


def import_cost(runs: int) -> float:
    """Median extra seconds of ``import pyVmomi`` in a fresh interpreter (the floor's second part)."""
    def once(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, '-c', code], check=True)
        return time.perf_counter() - t0
    with_import, bare = [], []
    for dummy in range(runs):
        with_import.append(once('import pyVmomi'))
        bare.append(once('pass'))
    return statistics.median(with_import) - statistics.median(bare)


def med(values: List[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=20, help='calls per measurement (median; default 20)')
    parser.add_argument('--small', type=int, default=5, help='vcsim -vm of the small inventory (2N VMs)')
    parser.add_argument('--large', type=int, default=5000, help='vcsim -vm of the large inventory (2N VMs)')
    parser.add_argument('--bulk', type=int, default=100, help='guests in the bulk comparison')
    parser.add_argument('--bulk-repeats', type=int, default=3, help='repetitions of our bulk task (median)')
    args = parser.parse_args()

    out: List[str] = []

    def say(line: str = '') -> None:
        out.append(line)
        print(line, flush=True)

    started = time.monotonic()
    load_start = os.getloadavg()[0]
    mem_kb = next(int(line.split()[1]) for line in open('/proc/meminfo') if line.startswith('MemTotal'))
    import ansible
    say('benchmarks/vmware_vs_community.py  %s' % datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M UTC'))
    say('machine: %d CPUs (shared with other jobs), %.1f GiB RAM, %s; Python %s, ansible-core %s, pyVmomi %s, '
        'community.vmware %s' % (os.cpu_count(), mem_kb / 1048576, platform.platform(terse=True),
                                 platform.python_version(), ansible.__version__ if hasattr(ansible, '__version__')
                                 else '?', importlib.metadata.version('pyvmomi'), community_version()))
    say('vcsim 0.24.2 (Debian source + patches) on 127.0.0.1; %d calls per median; every call is one '
        'ansible-playbook task' % args.runs)
    floor_import = import_cost(args.runs)
    say('import pyVmomi in a fresh interpreter: +%.3fs' % floor_import)

    results: Dict[int, Dict[str, List[float]]] = {}
    for size in (args.small, args.large):
        server = VcsimServer(vms_per_pool=size, start_timeout=600)
        server.start()
        try:
            bench = Bench(server)
            say('\n== %d VMs (vcsim ready in %.1fs) ==' % (server.vm_count, server.startup_seconds))
            data = bench.lookups(args.runs)
            if size == args.large:
                data.update(bench.create_remove(args.runs))
                data.update(bench.bulk(min(args.bulk, size), args.bulk_repeats))
            results[size] = data
            for key in sorted(data):
                say('  %-22s median %7.3fs  (n=%d, min %.3f, max %.3f)' % (
                    key, med(data[key]), len(data[key]), min(data[key]), max(data[key])))
        finally:
            server.stop()

    small, large = results[args.small], results[args.large]
    say('\n== ratios (medians) ==')
    say('1. lookup flatness, per-call time at %d VMs / at %d VMs (target <= 1.1; community.vmware for '
        'reference); in brackets the same with each size\'s time divided by its own ping median, which '
        'removes load that changed between the two runs:' % (2 * args.large, 2 * args.small))
    for key in ('name+folder', 'uuid', 'moid'):
        cells = []
        for who in ('ours', 'theirs'):
            raw = med(large['%s %s' % (who, key)]) / med(small['%s %s' % (who, key)])
            norm = raw / (med(large['ping']) / med(small['ping']))
            cells.append('%.2f [%.2f]' % (raw, norm))
        say('   %-12s ours %s   community.vmware %s' % (key, cells[0], cells[1]))
    say('2. distance from the floor, ours / floor task (ansible.builtin.ping\'s work + import pyVmomi, one '
        'module run per task, interleaved with ours) (target <= 1.15); in brackets the floor taken as ping '
        'task + separately measured import:')
    for size, data in ((args.small, small), (args.large, large)):
        floor = med(data['floor'])
        alt = med(data['ping']) + floor_import
        say('   %5d VMs: floor %.3fs [%.3fs]; %s' % (2 * size, floor, alt, '; '.join(
            '%s %.2f [%.2f]' % (key, med(data['ours %s' % key]) / floor, med(data['ours %s' % key]) / alt)
            for key in ('name+folder', 'uuid', 'moid'))))
    say('3. per call at %d VMs, community.vmware / ours, name+folder (target >= 2):' % (2 * args.large))
    for op in ('create', 'remove'):
        say('   %-7s %.2fx  (ours %.3fs, community.vmware %.3fs)' % (
            op, med(large['theirs %s' % op]) / med(large['ours %s' % op]), med(large['ours %s' % op]),
            med(large['theirs %s' % op])))
    bulk_ours = med(large['ours bulk'])
    bulk_theirs = large['theirs bulk'][0]
    say('4. %d guests in one task vs a loop of %d community.vmware tasks (target >= 30): %.1fx '
        '(ours %.2fs, median of %d; community.vmware %.1fs, once)' % (
            min(args.bulk, args.large), min(args.bulk, args.large), bulk_theirs / bulk_ours, bulk_ours,
            len(large['ours bulk']), bulk_theirs))
    say('\nwall time of this run: %.0fs; load average at the start %.2f, at the end %.2f (2 CPUs shared with '
        'other jobs: ratios between the two inventory sizes move with that load)' % (
            time.monotonic() - started, load_start, os.getloadavg()[0]))
    return 0


def community_version() -> str:
    import ansible_collections.community.vmware as cv
    manifest = Path(cv.__path__[0]) / 'MANIFEST.json'
    try:
        return json.loads(manifest.read_text())['collection_info']['version']
    except (OSError, ValueError, KeyError):
        return '?'


if __name__ == '__main__':
    sys.exit(main())

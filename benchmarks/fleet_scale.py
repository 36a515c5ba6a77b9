"""One task over 1, 100 and 1,000 guests on one vcsim, side by side: seconds, cost per guest, ratios.

Each run is the ``vmware_snapshot`` module as Ansible executes it on a target: a fresh Python
process given its arguments as a JSON file (interpreter start, imports, login, lookups, the
work, logout). Per size it creates one snapshot on every guest in one task, then removes it in
a second task. Rounds are interleaved (1, 100, 1000, 1, 100, ...) so that load from other jobs
on this 2-core machine hits every size alike; medians are printed with the ratios of issue 10
(target: 1,000 guests <= 5x one guest; the cost per guest falling as the batch grows) and the
peak RSS of the module process at each size (getrusage of the child). Beside the wall-clock seconds it
prints the CPU seconds of the module process and of vcsim during the task: the module's own CPU at 1,000
guests against one guest's whole task shows how far the client alone is from the target, whatever the
server does. Asserts nothing.

    .venv/bin/python benchmarks/fleet_scale.py [--runs 3] [--sizes 1,100,1000] [--parallel N]
    .venv/bin/python benchmarks/fleet_scale.py --profile 1000     # cProfile of one create, top 25

vcsim finishes every task inside its call, so this measures round trips and client work: what
scales with the guest count on our side (lookups, tree reads, starts, waits, read-backs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))

import conftest  # noqa: E402,F401  pylint: disable=unused-import  # links ansible_collections.savepoint.virt
from services.vcsim import VcsimServer  # noqa: E402

MODULE = REPO / 'plugins' / 'modules' / 'vmware_snapshot.py'


class Runner:
    """Runs the module and reads its peak RSS (Popen reaps the child itself, so wait4 is done here)."""

    def __init__(self, server: VcsimServer, parallel: int = 0) -> None:
        self.conn = {'hostname': server.host, 'port': server.port, 'username': 'user', 'password': 'pass',
                     'validate_certs': False, 'honor_capability_flags': False}
        self.names = server.vm_names()
        self.parallel = parallel
        self.server_pid = server.pid
        self.env = dict(os.environ, PYTHONPATH=str(REPO / 'build' / 'collections'))

    def task(self, size: int, state: str, name: str) -> Tuple[float, int, float, float]:
        """(seconds, peak RSS in KiB, module CPU seconds, vcsim CPU seconds) of one task."""
        args = dict(self.conn, guests=self.names[:size], snapshot_name=name, state=state,
                    timeout=3600)
        if self.parallel:
            args['parallel'] = self.parallel
        with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
            path = handle.name
        try:
            server_cpu = self.server_cpu()
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, str(MODULE), path], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self.env)
            out, err = read_all(proc)   # a bulk result of 1,000 guests is a few MB
            _pid, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t0
            server_cpu = self.server_cpu() - server_cpu
        finally:
            os.unlink(path)
        proc.returncode = os.waitstatus_to_exitcode(status)
        try:
            result = json.loads(out)
        except ValueError:
            raise RuntimeError('module output is not JSON (rc %s): %s %s' % (proc.returncode, out[-2000:],
                                                                             err[-2000:]))
        if result.get('failed'):
            raise RuntimeError('module failed: %s' % result.get('msg'))
        want = 'created' if state == 'present' else 'deleted'
        actions = [r['action'] for r in result['results']]
        if actions != [want] * size:
            raise RuntimeError('%s of %d guests: %s' % (state, size, sorted(set(actions))))
        return seconds, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, server_cpu

    def server_cpu(self) -> float:
        """CPU seconds vcsim has used so far (user + system, from /proc)."""
        fields = Path('/proc/%d/stat' % self.server_pid).read_text().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def read_all(proc: subprocess.Popen) -> Tuple[bytes, bytes]:
    """Both pipes to the end without reaping the child (communicate() would reap it, losing its rusage)."""
    import threading
    chunks: Dict[str, bytes] = {}

    def drain(key: str, stream: Any) -> None:
        chunks[key] = stream.read()
    threads = [threading.Thread(target=drain, args=(k, s)) for k, s in (('out', proc.stdout), ('err', proc.stderr))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return chunks['out'], chunks['err']


def profile(server: VcsimServer, size: int) -> None:
    """cProfile of one create of ``size`` guests, in this process (the engine and backend, no Ansible)."""
    import cProfile
    import pstats
    from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
    from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
    from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
    from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
    runner = Runner(server)
    refs = [GuestRef(name=n) for n in runner.names[:size]]
    request = Request(state='present', guests=refs, snapshot_name='prof',
                      spec=SnapshotSpec(name='prof', marker=make_marker(None, 'bench')))
    prof = cProfile.Profile()
    with VmwareBackend(runner.conn) as backend:
        prof.enable()
        SnapshotEngine(backend).run(request)
        prof.disable()
        SnapshotEngine(backend).run(Request(state='absent', guests=refs, snapshot_name='prof'))
    pstats.Stats(prof).sort_stats('cumulative').print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--sizes', default='1,100,1000')
    parser.add_argument('--parallel', type=int, default=0, help="the task's parallel (default: the provider's)")
    parser.add_argument('--profile', type=int, default=0, metavar='N', help='profile one create of N guests')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    largest = max(sizes + [args.profile])
    server = VcsimServer(vms_per_pool=(largest + 1) // 2)
    server.start()
    try:
        if args.profile:
            profile(server, args.profile)
            return 0
        runner = Runner(server, args.parallel)
        times: Dict[Tuple[int, str], List[float]] = {}
        rss: Dict[int, int] = {}
        cpus: Dict[Tuple[int, str], List[float]] = {}
        server_cpus: Dict[Tuple[int, str], List[float]] = {}
        for run in range(args.runs):
            for size in sizes:
                name = 'scale-%d-%d' % (size, run)
                for state in ('present', 'absent'):
                    seconds, peak, cpu, server_cpu = runner.task(size, state, name)
                    times.setdefault((size, state), []).append(seconds)
                    cpus.setdefault((size, state), []).append(cpu)
                    server_cpus.setdefault((size, state), []).append(server_cpu)
                    rss[size] = max(rss.get(size, 0), peak)
    finally:
        server.stop()
    print('fleet_scale: vmware_snapshot module process on vcsim, %d runs interleaved, medians; %s, %d CPUs, '
          'Python %s; parallel %s' % (args.runs, platform.platform(), os.cpu_count(), platform.python_version(),
                                      args.parallel or 'default (vmware: 32)'))
    header = ('guests', 'task', 'seconds', 'per guest', 'x 1 guest', 'peak RSS', 'module CPU', 'vcsim CPU')
    print('%8s %8s %10s %12s %10s %12s %11s %10s' % header)
    base = {state: statistics.median(times[(sizes[0], state)]) for state in ('present', 'absent')}
    for size in sizes:
        for state in ('present', 'absent'):
            med = statistics.median(times[(size, state)])
            print('%8d %8s %10.2f %10.1fms %10.2f %9.1f MiB %10.2fs %9.2fs' % (
                size, 'create' if state == 'present' else 'delete', med, 1000 * med / size, med / base[state],
                rss[size] / 1024.0, statistics.median(cpus[(size, state)]),
                statistics.median(server_cpus[(size, state)])))
    top = sizes[-1]
    for state in ('present', 'absent'):
        ratio = statistics.median(times[(top, state)]) / base[state]
        floor = statistics.median(cpus[(top, state)]) / base[state]
        print('%s: %d guests = %.2fx one guest (target <= 5x): %s; the module process alone uses %.2fx one '
              "guest's whole task in CPU" % ('create' if state == 'present' else 'delete', top, ratio,
                                             'met' if ratio <= 5 else 'MISSED', floor))
    per_guest = [statistics.median(times[(s, 'present')]) / s for s in sizes]
    print('cost per guest falling as the batch grows: %s' % (
        'yes' if all(a > b for a, b in zip(per_guest, per_guest[1:])) else 'NO'))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""How long after a snapshot image really became ``active`` each waiter returns, side by side on the
local OpenStack services, and how many API calls per minute each made while waiting.

Three ways to take a server snapshot and wait for it, in interleaved rounds on one server:

* ours: the engine as the ``openstack_snapshot`` module runs it (state=present, wait: true);
* sdk: openstacksdk's ``compute.create_server_image`` then the cloud layer's ``wait_for_image``;
* cli: ``openstack server image create --wait`` (python-openstackclient, benchmarks/requirements.txt).

The real end is when Glance switched the image to ``active``: a watcher thread with a connection of
its own reads the image every 50 ms and notes the first time it sees ``active`` (Glance's own
``updated_at`` has whole seconds only: printed as a check that the watcher agrees with it). The
calls of ours and sdk are counted from keystoneauth's request log, in their own thread only; the
CLI's from its ``--debug`` output; each counts the requests from the createImage call to the return.
Target (issue 10): ours within max(10 %, 250 ms) of the real end, at no more calls per minute of
waiting than the SDK's waiter. Two regimes side by side: the stack's usual snapshot (about 0.4 s:
no waiter can be within 250 ms of it and poll less often than the SDK's fixed 2 s), and a long one
(--long-seconds, 120 by default: the stack's Nova driver holds a snapshot whose image name contains
``slowsnap-<seconds>s`` that long before its upload). Asserts nothing. Hold the stack's lock while
it runs (--restart-nova-compute once, if nova-compute was started from a checkout without that knob):

    flock /tmp/savepoint-openstack.lock .venv/bin/python benchmarks/wait_latency.py [--rounds 5] \
        [--long-seconds 120 --long-rounds 1]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))

import conftest  # noqa: E402,F401  pylint: disable=unused-import  # links ansible_collections.savepoint.virt
from contract.harness_openstack import CLOUD, Runner, StackServers, shared_stack  # noqa: E402
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef  # noqa: E402

WATCH_EVERY = 0.05


class CallCounter(logging.Handler):
    """Counts keystoneauth's request log lines made by one thread and the server reads our create sends
    beside its image mark from a thread of its own (the watcher's are not counted)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread: Optional[int] = None
        self.calls: List[str] = []
        self.times: List[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        ours = record.thread == self.thread or record.threadName == 'savepoint-read-server'
        if ours and record.getMessage().startswith('REQ: curl'):
            self.calls.append(record.getMessage())
            self.times.append(record.created)


class Watcher(threading.Thread):
    """Notes the first time Glance shows an image ``active`` (reads every 50 ms, its own connection)."""

    def __init__(self, stack: Any) -> None:
        super().__init__(daemon=True)
        self.conn = stack.connect(CLOUD)
        self.lock = threading.Lock()
        self.prefix = ''
        self.seen: Dict[str, float] = {}
        self.updated: Dict[str, str] = {}
        self.stop = threading.Event()

    def watch(self, prefix: str) -> None:
        with self.lock:
            self.prefix = prefix

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                prefix = self.prefix
            if prefix:
                try:
                    for image in self.conn.image.images():
                        if (image.name or '').startswith(prefix) and image.status == 'active' \
                                and image.id not in self.seen:
                            self.seen[image.id] = time.time()
                            self.updated[image.id] = image.updated_at
                except Exception:  # a busy service: read again
                    pass
            time.sleep(WATCH_EVERY)

    def active_at(self, name: str, timeout: float = 60) -> Dict[str, Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for image in self.conn.image.images():
                if image.name == name and image.id in self.seen:
                    return {'id': image.id, 'seen': self.seen[image.id], 'updated_at': self.updated[image.id]}
            time.sleep(0.2)
        raise RuntimeError('the watcher never saw image %s active' % name)


def epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00')).timestamp()


def take_ours(runner: Runner, server: Any, name: str, counter: CallCounter) -> Dict[str, Any]:
    result = runner.run('present', GuestRef(id=server.id), name, timeout=600)
    end = time.time()
    assert result['action'] == 'created', result
    # from the createImage call, as for the others (not the login and lookups before it)
    start = next(i for i, c in enumerate(counter.calls) if '/action' in c and 'POST' in c)
    # The requests after the poll that saw 'active' (the last image read before the PATCH that marks it)
    # are our own work (the mark and a server read side by side, the lease release, the result), not waiting.
    patch = next(i for i, c in enumerate(counter.calls) if 'PATCH' in c and '/v2/images/' in c)
    marked = 1 + max(i for i, c in enumerate(counter.calls[:patch]) if 'GET' in c and '/v2/images/' in c)
    return {'start': counter.times[start], 'end': end, 'calls': len(counter.calls) - start - 1,
            'poll_saw': counter.times[marked], 'after_calls': len(counter.calls) - marked}


def take_sdk(conn: Any, server: Any, name: str, counter: CallCounter) -> Dict[str, Any]:
    t0 = time.time()
    image = conn.compute.create_server_image(server, name)
    start = len(counter.calls)
    conn.wait_for_image(image, timeout=600)
    end = time.time()
    return {'start': t0, 'end': end, 'calls': len(counter.calls) - start}


def take_cli(server: Any, name: str, env: Dict[str, str]) -> Dict[str, Any]:
    t0 = time.time()
    proc = subprocess.run(['openstack', '--os-cloud', CLOUD, '--debug', 'server', 'image', 'create', '--name',
                           name, '--wait', server.id], env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    end = time.time()
    if proc.returncode != 0:
        raise RuntimeError('openstack server image create failed: %s' % proc.stderr[-2000:])
    calls = [line for line in proc.stderr.splitlines() if line.startswith('REQ: curl')]
    start = next(i for i, c in enumerate(calls) if '/action' in c and 'POST' in c)
    return {'start': t0, 'end': end, 'calls': len(calls) - start - 1}


def take(method: str, name: str, server: Any, ctx: Dict[str, Any]) -> Dict[str, Any]:
    counter: CallCounter = ctx['counter']
    ctx['watcher'].watch(name)
    counter.calls, counter.times = [], []
    if method == 'ours':
        taken = take_ours(ctx['runner'], server, name, counter)
    elif method == 'sdk':
        taken = take_sdk(ctx['sdk'], server, name, counter)
    else:
        taken = take_cli(server, name, ctx['env'])
    real = ctx['watcher'].active_at(name, timeout=ctx['watch_timeout'])
    taken.update(real, late=taken['end'] - real['seen'], took=real['seen'] - taken['start'],
                 glance_skew=real['seen'] - epoch(real['updated_at']))
    ctx['sdk'].image.delete_image(real['id'], ignore_missing=True)
    return taken


def report(regime: str, rounds: int, delay: float, found: Dict[str, List[Dict[str, Any]]]) -> None:
    """One table per regime, and both targets of issue 10 with met/MISSED."""
    what = ('the stack\'s own snapshot (fake Nova driver, about 0.4 s)' if not delay else
            'a snapshot the driver holds %.0f s before its upload (image name slowsnap-%.0fs)' % (delay, delay))
    print('\nwait_latency %s: %d interleaved round(s), %s, medians' % (regime, rounds, what))
    print('%6s %10s %10s %10s %8s %12s %12s' % ('waiter', 'snapshot s', 'late ms', 'late %', 'calls',
                                                'calls/min', 'seen-updated'))
    summary = {}
    for method, runs in found.items():
        late = statistics.median(r['late'] for r in runs)
        took = statistics.median(r['took'] for r in runs)
        calls = statistics.median(r['calls'] for r in runs)
        # per minute of waiting: from the createImage call to the return
        per_min = statistics.median(r['calls'] * 60.0 / max(0.001, r['end'] - r['start']) for r in runs)
        skew = statistics.median(r['glance_skew'] for r in runs)
        summary[method] = (late, took, per_min)
        row = (method, took, 1000 * late, 100 * late / took, calls, per_min, skew)
        print('%6s %10.2f %10.0f %9.1f%% %8.1f %12.1f %11.2fs' % row)
    ours = found['ours']
    print('%s: ours\' poll saw the image active %.0f ms after the real end; its own work after that took %.0f ms '
          '(%.0f calls: mark the image beside a server read, release the lease)'
          % (regime, 1000 * statistics.median(r['poll_saw'] - r['seen'] for r in ours),
             1000 * statistics.median(r['end'] - r['poll_saw'] for r in ours),
             statistics.median(r['after_calls'] for r in ours)))
    late, took, per_min = summary['ours']
    bound = max(0.10 * took, 0.25)
    print('%s: ours %.0f ms after the real end (target <= %.0f ms = max(10 %%, 250 ms)): %s; %.1f calls/min '
          'against the SDK waiter\'s %.1f: %s' % (regime, 1000 * late, 1000 * bound,
                                                  'met' if late <= bound else 'MISSED', per_min, summary['sdk'][2],
                                                  'met' if per_min <= summary['sdk'][2] else 'MISSED'))
    print('%s: sdk returns %.1fx, cli %.1fx as late as ours'
          % (regime, summary['sdk'][0] / max(0.001, late), summary['cli'][0] / max(0.001, late)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=5, help='rounds of the short regime')
    parser.add_argument('--long-seconds', type=float, default=120.0,
                        help='how long the long regime\'s snapshot takes (0: no long regime)')
    parser.add_argument('--long-rounds', type=int, default=1)
    parser.add_argument('--restart-nova-compute', action='store_true',
                        help='restart nova-compute first, so that it runs this checkout\'s driver (with the '
                             'slow-snapshot knob); only under the stack\'s lock')
    args = parser.parse_args()
    cli = shutil.which('openstack') or str(Path(sys.executable).parent / 'openstack')
    if not os.path.exists(cli):
        print('the openstack CLI is missing: .venv/bin/pip install -r benchmarks/requirements.txt', file=sys.stderr)
        return 2
    stack = shared_stack()
    if args.restart_nova_compute:
        stack.stop_service('nova-compute')
        stack.start_service('nova-compute')
    env = dict(os.environ, PATH='%s:%s' % (Path(cli).parent, os.environ.get('PATH', '')))
    servers = StackServers(stack)
    counter = CallCounter()
    counter.thread = threading.get_ident()
    log = logging.getLogger('keystoneauth')
    log.setLevel(logging.DEBUG)
    log.addHandler(counter)
    watcher = Watcher(stack)
    watcher.start()
    ctx: Dict[str, Any] = {'counter': counter, 'watcher': watcher, 'runner': Runner(timeout=600),
                           'sdk': stack.connect(CLOUD), 'env': env}
    regimes = [('short', 0.0, args.rounds)]
    if args.long_seconds > 0 and args.long_rounds > 0:
        regimes.append(('long', args.long_seconds, args.long_rounds))
    results = []
    try:
        server = servers.boot()
        for regime, delay, rounds in regimes:
            ctx['watch_timeout'] = 60 + delay
            found: Dict[str, List[Dict[str, Any]]] = {'ours': [], 'sdk': [], 'cli': []}
            for index in range(rounds):
                for method in ('ours', 'sdk', 'cli'):
                    slow = 'slowsnap-%gs-' % delay if delay else ''
                    taken = take(method, 'wl-%s%s-%d-%s' % (slow, method, index, uuid.uuid4().hex[:6]), server, ctx)
                    if delay and taken['took'] < 0.9 * delay:
                        print('the snapshot took %.1f s, not the %g s its name asks for: nova-compute runs a driver '
                              'without the slow-snapshot knob; run again with --restart-nova-compute'
                              % (taken['took'], delay), file=sys.stderr)
                        return 2
                    found[method].append(taken)
            results.append((regime, rounds, delay, found))
    finally:
        watcher.stop.set()
        servers.cleanup()
        servers.conn.close()
    for regime, rounds, delay, found in results:
        report(regime, rounds, delay, found)
    return 0


if __name__ == '__main__':
    sys.exit(main())

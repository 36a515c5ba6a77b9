"""`make demo`: a change that breaks a real Linux guest is undone by reverting to a restore point.

Boots the tiny real Linux guest (tests/services/linux_guest.py) on the local libvirtd (started if it
is not running, and stopped again), runs playbooks/demo_libvirt.yml against it with ansible-playbook,
and tells what happened, with the guest's pause and the time each step took. Everything it started
is removed at the end, whatever happens.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.ansible_run import REPO, PlaybookRun, run_playbook  # noqa: E402
from services.libvirt import ensure_daemon, stop_daemon  # noqa: E402
from services.linux_guest import LinuxGuest, build_guest  # noqa: E402

PLAYBOOK = REPO / 'playbooks' / 'demo_libvirt.yml'


def say(text: str = '') -> None:
    print(text, flush=True)


def _iso(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def task_seconds(run: PlaybookRun) -> Dict[str, float]:
    """Seconds per task name, from the json callback's task durations."""
    found: Dict[str, float] = {}
    for play in run.data.get('plays', []):
        for task in play.get('tasks', []):
            duration = task['task'].get('duration') or {}
            if duration.get('start') and duration.get('end'):
                found[task['task']['name']] = (_iso(duration['end']) - _iso(duration['start'])).total_seconds()
    return found


def optional(run: PlaybookRun, name: str) -> Optional[Dict[str, Any]]:
    try:
        return run.result(name)
    except KeyError:
        return None


def tell_story(run: PlaybookRun, guest: LinuxGuest) -> List[str]:
    """The story of the run; raises SystemExit naming the step that did not go as told."""
    secs = task_seconds(run)
    lines: List[str] = []

    def need(name: str) -> Dict[str, Any]:
        result = optional(run, name)
        if result is None or (result.get('failed') and not name.startswith('Health check after the change')):
            raise SystemExit('DEMO FAILED at %r: %s\n%s' % (
                name, (result or {}).get('msg', 'the task did not run'), run.stderr[-3000:]))
        return result

    def took(*names: str) -> str:
        return '%.1fs' % sum(secs.get(n, 0.0) for n in names)

    hello = need('Reach the guest over SSH')['stdout'].strip()
    lines.append('Reached the guest over SSH (%s): %s.' % (took('Reach the guest over SSH'), hello))
    need('Health check before the change')
    lines.append('Health page %s says "ok" (HTTP 200).' % guest.health_url)
    taken = need('Take the restore point')
    snap, cost = taken['snapshot'], taken['results'][0]['cost']
    lines.append('Took restore point %r with the guest\'s memory (%s); the guest was paused for %.3fs.'
                 % (snap['name'], took('Take the restore point'), cost['guest_blocked_seconds'] or 0.0))
    change = ('Release 2 writes its file on the data disk', 'Release 2 breaks the health page')
    for name in change:
        need(name)
    lines.append('The change, over SSH: wrote /data/release-2.txt and took the health page down (%s).'
                 % took(*change))
    broken = need('Health check after the change')
    if not broken.get('failed'):
        raise SystemExit('DEMO FAILED: the health check passed after the breaking change: %s' % broken)
    lines.append('Health check after the change FAILED: HTTP %s (%s, with retries).'
                 % (broken.get('status'), took('Health check after the change')))
    reverted = need('Revert the guest to the restore point')
    lines.append('Reverted the guest to %r (%s); SSH answered again after %s.'
                 % (snap['name'], took('Revert the guest to the restore point'),
                    took('Wait until the guest answers SSH again')))
    need('Health check after the revert')
    lines.append('Health is back: "ok" (HTTP 200).')
    need('Read over SSH whether the change\'s file is still there')
    lines.append('Read over SSH: /data/release-2.txt is gone.')
    removed = need('Remove the restore point')
    need('List the restore points left on the guest')
    lines.append('%s (%s); no restore point is left on the guest.'
                 % (removed['msg'][0].upper() + removed['msg'][1:], took('Remove the restore point')))
    if reverted.get('changed') is not True:
        raise SystemExit('DEMO FAILED: the revert reported no change: %s' % reverted)
    return lines


def main() -> int:
    started = time.monotonic()
    was_running = subprocess.run(['bash', str(REPO / 'tests/services/libvirt/up.sh'), 'status'],
                                 capture_output=True, check=False).returncode == 0
    say('savepoint.virt demo: a change that breaks a real Linux guest is undone by a restore point')
    say()
    say('- building the tiny Linux guest (cached after the first run) ...')
    t0 = time.monotonic()
    build_guest(with_python=False)
    say('  ready in %.1fs' % (time.monotonic() - t0))
    ensure_daemon(sys.executable)
    guest = LinuxGuest(prefix='savepoint-demo')
    try:
        say('- booting guest on libvirt (QEMU, software emulation) ...')
        t0 = time.monotonic()
        guest.start()
        say('  %s is up in %.1fs: SSH on 127.0.0.1:%d, health page on %s'
            % (guest.name, time.monotonic() - t0, guest.ssh_port, guest.health_url))
        say('- running %s with ansible-playbook ...' % PLAYBOOK.relative_to(REPO))
        with tempfile.TemporaryDirectory(prefix='savepoint-demo-') as tmp:
            inventory = Path(tmp) / 'inventory.json'
            inventory.write_text(json.dumps({'all': {'hosts': {'demo_guest': guest.inventory_vars()}}}))
            t0 = time.monotonic()
            run = run_playbook(PLAYBOOK, env={'ANSIBLE_INVENTORY': str(inventory)})
            playbook_seconds = time.monotonic() - t0
        say()
        for number, line in enumerate(tell_story(run, guest), 1):
            say('%d. %s' % (number, line))
        if run.rc != 0:
            raise SystemExit('DEMO FAILED: ansible-playbook exited %d:\n%s' % (run.rc, run.stderr[-3000:]))
        say()
        say('Demo passed in %.0fs (playbook %.0fs): the failed change was undone and nothing was left behind.'
            % (time.monotonic() - started, playbook_seconds))
        return 0
    finally:
        guest.destroy()
        if not was_running:
            stop_daemon()


if __name__ == '__main__':
    sys.exit(main())

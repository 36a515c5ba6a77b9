"""`make demo`: a guarded change that fails and is reverted, on a real local libvirt guest.

Starts libvirtd if it is not running (and stops it again), defines a throwaway
guest with no OS, runs playbooks/demo_libvirt.yml, and tells what happened.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import libvirt  # noqa: E402

from scripts.ansible_run import REPO, run_playbook  # noqa: E402
from services.libvirt import TinyGuest, ensure_daemon, stop_daemon  # noqa: E402

GUEST = 'savepoint-demo'


def say(text: str = '') -> None:
    print(text, flush=True)


def main() -> int:
    was_running = subprocess.run(['bash', str(REPO / 'tests/services/libvirt/up.sh'), 'status'],
                                 capture_output=True, check=False).returncode == 0
    ensure_daemon(sys.executable)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open('qemu:///system')
    try:
        old = conn.lookupByName(GUEST)
    except libvirt.libvirtError:
        old = None
    if old is not None:  # left over from an interrupted demo
        leftover = TinyGuest(conn, GUEST)
        leftover.dom = old
        leftover.destroy()
    guest = TinyGuest(conn, GUEST).create()
    say('savepoint.virt demo: a guarded change that fails, on libvirt guest %r (QEMU, no OS, 64 MiB disk)' % GUEST)
    say()
    try:
        run = run_playbook(REPO / 'playbooks' / 'demo_libvirt.yml', {'demo_guest': GUEST})
        step = 0

        def tell(text: str) -> None:
            nonlocal step
            step += 1
            say('%d. %s' % (step, text))

        tell('Wrote the "before" pattern 0xab to the first 4 KiB of the disk.')
        taken = run.result('Take restore point before-demo-change')
        if taken.get('failed'):
            raise SystemExit('the restore point could not be taken: %s' % taken.get('msg'))
        snap = taken['snapshot']
        cost = taken['results'][0]['cost']
        tell('Took restore point %r: guest %s, memory %s, guest paused %.3fs while it was taken.'
             % (snap['name'], snap['power_state'], 'included' if snap['memory'] else 'not included',
                cost['guest_blocked_seconds'] or 0.0))
        tell('The change wrote 0xcd over that disk area, then failed.')
        reverted = run.result('Revert to restore point before-demo-change')
        tell('The guard reverted the guest: %s. Guest is %s.'
             % (reverted['msg'], guest.state))
        tell('The play reported: %s' % run.result('Tell the story so far')['msg'])
        check = run.result('Prove the disk content from before the change is back')
        if check.get('failed'):
            raise SystemExit('PROOF FAILED: %s' % check.get('msg'))
        tell(check['msg'])
        tell('%s; %s.' % (run.result('Remove the restore point')['msg'],
                          run.result('The end of the story')['msg'][1]))
        if run.rc != 0:
            raise SystemExit('ansible-playbook exited %d:\n%s' % (run.rc, run.stderr))
        say()
        say('Demo passed: the failed change was undone and nothing was left behind.')
        return 0
    finally:
        guest.destroy()
        conn.close()
        if not was_running:
            stop_daemon()


if __name__ == '__main__':
    sys.exit(main())

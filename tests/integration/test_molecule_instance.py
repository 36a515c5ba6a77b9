"""savepoint.virt.molecule_create / molecule_destroy on a real Linux guest: two consecutive
`molecule test` runs of the example scenario (extensions/molecule/instance_libvirt). The first
takes the baseline and leaves the guest as its role changed it (--destroy never) -- the test adds
a file of its own there; the second starts from the baseline: its verify step (over SSH) finds
only its own config and nothing of the first run; its destroy reverts the guest once more."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest

from scripts.ansible_run import REPO, collection_env
from services.linux_guest import LinuxGuest

pytestmark = pytest.mark.qemu

SCENARIO = 'instance_libvirt'
BASELINE = 'savepoint-molecule-baseline'


def molecule(guest: LinuxGuest, run: str, *args: str, command: str = 'test') -> str:
    env = collection_env()
    env.pop('ANSIBLE_PYTHON_INTERPRETER', None)  # the guest has its own; localhost uses the playbook's
    env['PATH'] = '%s%s%s' % (Path(sys.executable).parent, os.pathsep, env.get('PATH', ''))
    env.update({
        'SAVEPOINT_MOLECULE_GUEST': guest.name,
        'SAVEPOINT_MOLECULE_PORT': str(guest.ssh_port),
        'SAVEPOINT_MOLECULE_KEY': str(guest.key_file),
        'SAVEPOINT_MOLECULE_KNOWN_HOSTS': str(guest.known_hosts),
        'SAVEPOINT_MOLECULE_RUN': run,
        'ANSIBLE_NOCOLOR': '1', 'NO_COLOR': '1',
    })
    proc = subprocess.run([str(Path(sys.executable).parent / 'molecule'), command, '-s', SCENARIO] + list(args),
                          cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    if command == 'test':
        assert 'failed=0' in output and 'successful=' in output, output[-3000:]
    return output


def snapshot_names(guest: LinuxGuest) -> list:
    conn = libvirt.open('qemu:///system')
    try:
        return sorted(s.getName() for s in conn.lookupByName(guest.name).listAllSnapshots(0))
    finally:
        conn.close()


@pytest.fixture
def guest():
    made = LinuxGuest(prefix='sp-mol', with_python=True).start()
    yield made
    made.destroy()


def test_second_molecule_run_starts_from_the_baseline(guest):
    assert guest.ssh('test -e /data/app.conf', check=False).returncode != 0  # a fresh guest

    molecule(guest, 'reset', command='reset')  # no state of an earlier session: create must run
    first = molecule(guest, 'first', '--destroy', 'never')
    assert 'converge' in first and 'verify' in first
    assert snapshot_names(guest) == [BASELINE]
    # kept as the role left it: the role's file is on the guest, and the test leaves one more
    assert guest.ssh('cat /data/app.conf').stdout == 'written by molecule run first\n'
    guest.ssh('touch /data/left-by-earlier-run && sync')

    molecule(guest, 'second')  # its verify asserts: only the second run's config, nothing left behind
    assert snapshot_names(guest) == [BASELINE]  # taken once, reused, never duplicated
    # destroy reverted to the baseline again: neither run's files are there
    guest.wait_ssh()
    gone = guest.ssh('ls /data/app.conf /data/left-by-earlier-run', check=False)
    assert gone.returncode != 0 and 'app.conf' not in gone.stdout, gone.stdout + gone.stderr

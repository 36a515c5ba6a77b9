"""The tiny real Linux guest, and what only a guest with an OS can prove: quiesce for real,
thaw after a failed quiesced snapshot, and a memory snapshot that undoes a change made over SSH.

Every test boots its own guest (own disk, own loopback ports) and destroys it afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from scripts.ansible_run import run_playbook
from services.linux_guest import LinuxGuest, build_guest, start_guests

pytestmark = pytest.mark.qemu
PLAYBOOKS = Path(__file__).resolve().parent / 'playbooks'


@pytest.fixture(scope='module')
def built():
    return build_guest(with_python=False)


@pytest.fixture
def guest(built):
    g = LinuxGuest(prefix='sp-it')
    try:
        g.start()
        yield g
    finally:
        g.destroy()


def virsh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['virsh', '-c', 'qemu:///system', *args], capture_output=True, text=True,
                          timeout=120, check=False)


def listening_on(port: int) -> set:
    """The IPv4/IPv6 addresses with a listening TCP socket on port (from /proc: no iproute2 needed)."""
    found = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(':', 1)
                if state == '0A' and int(hex_port, 16) == port:
                    if len(address) == 8:
                        found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                    else:
                        found.add(address)
    return found


def freeze_status(g: LinuxGuest) -> str:
    proc = virsh('qemu-agent-command', g.name, '{"execute":"guest-fsfreeze-status"}')
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)['return']


def freeze_log(g: LinuxGuest) -> list:
    return [line.split()[-1] for line in g.ssh('cat /run/fsfreeze.log 2>/dev/null || true').stdout.splitlines()]


def step(g: LinuxGuest, **args) -> dict:
    run = run_playbook(PLAYBOOKS / 'libvirt_step.yml', dict(guest=g.name, **args))
    return run.result('Call the module')


def snapshot_names(g: LinuxGuest) -> list:
    return sorted(s.getName() for s in g.dom.listAllSnapshots(0))


def test_boot_ssh_write_and_health_page(guest):
    assert guest.ssh('echo hello > /data/hello && sync && cat /data/hello').stdout == 'hello\n'
    assert guest.ssh('grep " /data " /proc/mounts').stdout.split()[2] == 'ext4'
    assert guest.health() == (200, 'ok\n')
    assert guest.ssh('false', check=False).returncode == 1
    # the ports are loopback only, and every guest has its own
    for port in (guest.ssh_port, guest.http_port):
        assert listening_on(port) == {'127.0.0.1'}


def test_three_guests_at_once_each_with_its_own_disk_and_ports(built):
    with start_guests(3, prefix='sp-it3') as guests:
        ports = [p for g in guests for p in (g.ssh_port, g.http_port)]
        assert len(set(ports)) == 6 and len({g.name for g in guests}) == 3
        for i, g in enumerate(guests):
            g.ssh('echo %d > /data/who' % i)
        assert [g.ssh('cat /data/who').stdout.strip() for g in guests] == ['0', '1', '2']
        assert all(g.health()[0] == 200 for g in guests)
        names = [g.name for g in guests]
        run_dirs = [g.run_dir for g in guests]
    listed = virsh('list', '--all', '--name').stdout.split()
    assert not set(names) & set(listed)
    assert not any(d.exists() for d in run_dirs)


def test_ansible_reaches_the_guest_over_ssh_with_raw(guest, tmp_path):
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'hosts': {'guest1': guest.inventory_vars()}}}))
    playbook = tmp_path / 'raw.yml'
    playbook.write_text(
        '- hosts: guest1\n  gather_facts: false\n  tasks:\n'
        '    - name: Write over SSH\n      ansible.builtin.raw: echo from-ansible > /data/ansible\n'
        '      changed_when: true\n')
    run = run_playbook(playbook, env={'ANSIBLE_INVENTORY': str(inventory)})
    assert run.rc == 0, run.stderr
    assert guest.ssh('cat /data/ansible').stdout == 'from-ansible\n'


def test_python_variant_runs_ordinary_modules(built, tmp_path):
    with LinuxGuest(prefix='sp-itpy', with_python=True) as g:
        g.start()
        inventory = tmp_path / 'inventory.json'
        inventory.write_text(json.dumps({'all': {'hosts': {'pyguest': g.inventory_vars()}}}))
        playbook = tmp_path / 'copy.yml'
        playbook.write_text(
            '- hosts: pyguest\n  gather_facts: false\n  tasks:\n'
            '    - name: Copy a file\n      ansible.builtin.copy:\n        content: "copied\\n"\n'
            '        dest: /data/copied\n        mode: "0644"\n')
        run = run_playbook(playbook, env={'ANSIBLE_INVENTORY': str(inventory)})
        assert run.rc == 0, (run.result('Copy a file'), run.stderr[-2000:])
        assert run.result('Copy a file')['changed'] is True
        assert g.ssh('cat /data/copied').stdout == 'copied\n'


def test_quiesce_required_external_freezes_and_thaws_for_real(guest):
    result = step(guest, snapshot_name='quiet', kind='external', memory=False, quiesce='required')
    assert result.get('failed') is not True, result.get('msg')
    assert result['changed'] is True
    assert result['snapshot']['kind'] == 'external' and result['snapshot']['quiesced'] is True
    # the agent's hook ran: the filesystem was frozen and thawed again, in that order
    assert freeze_log(guest) == ['freeze', 'thaw']
    assert freeze_status(guest) == 'thawed'
    assert guest.ssh('echo after > /data/after && cat /data/after', timeout=60).stdout == 'after\n'
    removed = step(guest, snapshot_name='quiet', state='absent')
    assert removed.get('failed') is not True and removed['changed'] is True, removed.get('msg')
    assert snapshot_names(guest) == []


def test_frozen_filesystem_is_thawed_when_the_snapshot_fails(guest):
    # libvirt names the overlay <disk base>.<snapshot>; a dangling link there passes libvirt's
    # "already exists" pre-check, so creating the overlay fails only AFTER the agent froze /data.
    overlay = guest.run_dir / 'data.doomed'
    os.symlink('/nonexistent-savepoint-dir/overlay', overlay)
    result = step(guest, snapshot_name='doomed', kind='external', memory=False, quiesce='required')
    assert result.get('failed') is True and result.get('changed') is False, result
    assert result['error'] == 'provider_error' and 'failed to create image file' in result['msg']
    assert 'doomed' in result['msg'] and guest.name in result['msg']
    assert 'Traceback' not in result['msg']
    assert freeze_log(guest) == ['freeze', 'thaw']   # it was frozen, and thawed again
    assert freeze_status(guest) == 'thawed'
    assert guest.ssh('echo alive > /data/alive && sync && cat /data/alive', timeout=60).stdout == 'alive\n'
    assert snapshot_names(guest) == []


def test_memory_snapshot_reverts_a_change_made_over_ssh(guest):
    guest.ssh('echo before > /data/keep && sync')
    created = step(guest, snapshot_name='before-change')
    assert created.get('failed') is not True, created.get('msg')
    assert created['snapshot']['memory'] is True
    assert created['results'][0]['cost']['guest_blocked_seconds'] > 0
    guest.ssh('echo changed > /data/keep && echo new > /data/added && echo ram > /root/in-ram && sync')
    reverted = step(guest, snapshot_name='before-change', state='reverted')
    assert reverted.get('failed') is not True and reverted['changed'] is True, reverted.get('msg')
    guest.wait_ssh()   # the revert restarted QEMU: the old SSH connections are gone
    assert guest.ssh('cat /data/keep').stdout == 'before\n'
    assert guest.ssh('test -e /data/added', check=False).returncode == 1
    assert guest.ssh('test -e /root/in-ram', check=False).returncode == 1
    assert guest.health() == (200, 'ok\n')
    removed = step(guest, snapshot_name='before-change', state='absent')
    assert removed.get('failed') is not True and removed['changed'] is True
    assert snapshot_names(guest) == []

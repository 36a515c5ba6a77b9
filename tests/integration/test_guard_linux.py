"""The guard role on real Linux guests: the change and the health checks run over SSH inside
the guests, the restore points are libvirt snapshots (with memory) of the running guests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scripts.ansible_run import run_playbook
from services.linux_guest import start_guests

pytestmark = pytest.mark.qemu
HERE = Path(__file__).resolve().parent / 'playbooks' / 'guard'


@pytest.fixture
def three():
    guests = start_guests(3, prefix='sp-guard', with_python=True)
    yield guests
    guests.destroy()


def inventory(tmp_path, guests):
    hosts = {}
    for guest in guests:
        hostvars = guest.inventory_vars()
        hostvars.update(savepoint_provider='libvirt', savepoint_guest=guest.name,
                        savepoint_connection={'uri': 'qemu:///system'})
        hosts['web%d' % (len(hosts) + 1)] = hostvars
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'all': {'hosts': hosts,
                                        'children': {'controller': {'hosts': {'localhost': {
                                            'ansible_connection': 'local',
                                            'ansible_python_interpreter': sys.executable}}}}}}))
    return path


def test_three_real_guests_two_per_batch_only_the_broken_one_is_reverted(tmp_path, three):
    web1, web2, web3 = three
    for guest in three:
        assert guest.health()[0] == 200
    extra = {
        'target_hosts': 'all:!controller', 'rollout_serial': 2,
        'guard_change_tasks': str(HERE / 'linux_change.yml'), 'guard_test_break': ['web2'],
        'guard_health_checks': [
            {'port': 22},                                                     # inside the guest
            {'url': '{{ guest_health_url }}', 'status': 200, 'delegate_to': 'localhost',
             'retries': 2, 'delay': 1},                                       # as a load balancer sees it
            {'command': 'test -s /www/health', 'retries': 0},                 # inside the guest
        ],
    }
    run = run_playbook('savepoint.virt.patch_rollout', extra,  # type: ignore[arg-type]
                       env={'ANSIBLE_INVENTORY': str(inventory(tmp_path, three)),
                            'ANSIBLE_SHOW_CUSTOM_STATS': 'true'},
                       # Python modules inside TCG guests on a loaded 2-core machine: no tight bound
                       timeout=2400)
    stats = run.data.get('global_custom_stats', {}).get('savepoint_guard', {})
    assert {h: s['outcome'] for h, s in stats.items()} == {
        'web1': 'succeeded', 'web2': 'reverted', 'web3': 'succeeded'}, run.stderr[-3000:]
    assert run.rc != 0
    # web2: the file is gone (read over SSH) and health is back; the others keep their change
    assert web2.ssh('test -e /data/guard-change', check=False).returncode == 1
    assert web2.health()[0] == 200 and stats['web2']['health_back'] is True
    for guest in (web1, web3):
        assert guest.ssh('cat /data/guard-change').stdout == 'changed-by-guard\n'
        assert guest.health()[0] == 200
    # no restore point left on any guest
    for guest in three:
        assert guest.ssh('true').returncode == 0
        listed = run_playbook(HERE / 'snapshots.yml', {'guest': guest.name})
        assert listed.result('List the restore points')['snapshots'] == [], guest.name
    failed = [t for t in run.tasks() if t['name'].endswith('Fail the host whose change did not succeed')
              and t['result'].get('failed')]
    assert [t['host'] for t in failed] == ['web2']
    msg = failed[0]['result']['msg']
    for words in ('guest %s was reverted' % web2.name, stats['web2']['snapshot'], 'health is back'):
        assert words in msg, msg
    # a real memory snapshot of a running guest pauses it: the pause is measured and reported
    for stat in stats.values():
        assert stat['snapshot_pause_seconds'] > 0
        assert stat['seconds']['snapshot'] > 0 and stat['seconds']['change'] > 0

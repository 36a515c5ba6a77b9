"""The guard role over a batch that spans libvirt (QEMU), VMware (vcsim) and OpenStack: the
batch's restore points are ONE task across the three providers, and the failed host alone is
reverted on its own provider.

The hosts are on a local connection (their guests have no OS); the change runs on the
controller and the hosts in guard_test_fail fail it. Connections as a mixed estate has them:
libvirt and OpenStack in the inventory, VMware's credentials in the controller's environment
(as AWX injects them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef
from contract.harness_openstack import shared_stack
from contract.harness_vmware import connection
from scripts.ansible_run import run_playbook

pytestmark = [pytest.mark.qemu, pytest.mark.vmware, pytest.mark.openstack]
HERE = Path(__file__).resolve().parent / 'playbooks' / 'guard'
TINY_GUEST_PREFIX = 'sp-xguard'


def test_a_batch_across_three_providers_is_one_restore_point_task(
        tmp_path, tiny_guests, vcsim_inventory, servers):
    kvm = tiny_guests()
    vm = vcsim_inventory.new_vm()
    server = servers.boot()
    conn = connection(vcsim_inventory.server)
    env = dict(shared_stack().environ(), ANSIBLE_SHOW_CUSTOM_STATS='true',
               VMWARE_HOST=str(conn.pop('hostname')), VMWARE_PORT=str(conn.pop('port')),
               VMWARE_USER=conn.pop('username'), VMWARE_PASSWORD=conn.pop('password'),
               # vcsim's self-signed certificate: not verified for VMware only (validate_certs is
               # shared with OpenStack, so it is not given in the task)
               VMWARE_VALIDATE_CERTS=str(conn.pop('validate_certs')).lower())
    hosts = {
        'kvm': {'savepoint_provider': 'libvirt', 'savepoint_guest': kvm.name,
                'savepoint_connection': {'uri': 'qemu:///system'}},
        'app': {'savepoint_provider': 'vmware', 'savepoint_guest': vm.name, 'savepoint_connection': conn},
        'db': {'savepoint_provider': 'openstack', 'savepoint_guest': server.name,
               'savepoint_connection': {'cloud': 'stack-demo'}},
    }
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'hosts': hosts, 'vars': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}))
    env['ANSIBLE_INVENTORY'] = str(inventory)
    run = run_playbook(HERE / 'guard.yml', {'guard_change_tasks': str(HERE / 'local_change.yml'),
                                            'guard_test_fail': ['db'], 'guard_test_serial': 3}, env=env)
    stats = run.data.get('global_custom_stats', {}).get('savepoint_guard', {})
    assert run.rc != 0
    assert {h: (s['provider'], s['outcome']) for h, s in stats.items()} == {
        'kvm': ('libvirt', 'succeeded'), 'app': ('vmware', 'succeeded'), 'db': ('openstack', 'reverted')}, \
        [s.get('msg') for s in stats.values()]
    # ONE task took the three restore points, one per provider, in the order of the hosts
    bulk = [t for t in run.tasks() if t['name'].endswith("Take the batch's restore points in one task")]
    assert len(bulk) == 1 and len(bulk[0]['result']['results']) == 1, bulk
    task = bulk[0]['result']['results'][0]
    assert task['provider'] == 'libvirt+openstack+vmware'
    assert [(r['provider'], r['guest']['name'], r['action']) for r in task['results']] == [
        ('libvirt', kvm.name, 'created'), ('vmware', vm.name, 'created'), ('openstack', server.name, 'created')]
    revert = next(t['result'] for t in run.tasks()
                  if t['name'].endswith('Revert to the restore point') and t['host'] == 'db')
    assert revert['results'][0]['action'] == 'reverted', revert.get('msg')
    assert not [t for t in run.tasks() if t['name'].endswith('Revert to the restore point') and t['host'] != 'db'
                and not t['result'].get('skipped')]
    # nothing left behind on any provider
    assert kvm.dom.listAllSnapshots(0) == []
    assert vcsim_inventory.vm(GuestRef(name=vm.name)).snapshot is None
    sdk = servers.conn
    owned = [i for i in sdk.image.images(owner=sdk.current_project_id) if i.instance_uuid == server.id]
    assert owned == [], [i.name for i in owned]
    assert sdk.compute.get_server(server.id).status == 'ACTIVE'
    # the VMware password (from the environment) is in no task's output
    assert '"%s"' % env['VMWARE_PASSWORD'] not in json.dumps(run.data)

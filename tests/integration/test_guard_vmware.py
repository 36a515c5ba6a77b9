"""The guard role on VMware (vcsim): hosts on a local connection (their VMs have no OS),
restore points as vSphere snapshots taken in one bulk task, a failed change reverted."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from contract.harness_vmware import connection
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef
from scripts.ansible_run import run_playbook

pytestmark = pytest.mark.vmware
HERE = Path(__file__).resolve().parent / 'playbooks' / 'guard'


def test_guard_on_vcsim_reverts_the_failed_vm_only(tmp_path, vcsim_inventory):
    inv = vcsim_inventory
    ok_vm, bad_vm = inv.new_vm(), inv.new_vm()
    conn = connection(inv.server)
    # credentials the way AWX injects them: in the controller's environment, not in the inventory
    env = {'VMWARE_HOST': str(conn.pop('hostname')), 'VMWARE_PORT': str(conn.pop('port')),
           'VMWARE_USER': conn.pop('username'), 'VMWARE_PASSWORD': conn.pop('password'),
           'ANSIBLE_SHOW_CUSTOM_STATS': 'true'}
    hosts = {'app': {'savepoint_guest': ok_vm.name},
             'db': {'savepoint_guest_uuid': bad_vm.config.uuid}}
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'hosts': hosts, 'vars': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'savepoint_provider': 'vmware', 'savepoint_connection': conn}}}))
    env['ANSIBLE_INVENTORY'] = str(inventory)
    run = run_playbook(HERE / 'guard.yml', {'guard_change_tasks': str(HERE / 'local_change.yml'),
                                            'guard_test_fail': ['db'],
                                            'guard_health_checks': [{'command': 'true'}]}, env=env)
    stats = run.data.get('global_custom_stats', {}).get('savepoint_guard', {})
    assert run.rc != 0
    assert {h: s['outcome'] for h, s in stats.items()} == {'app': 'succeeded', 'db': 'reverted'}, \
        [s.get('msg') for s in stats.values()]
    assert stats['db']['guest'] == bad_vm.config.uuid and stats['db']['provider'] == 'vmware'
    # one bulk task took both restore points
    bulk = [t for t in run.tasks() if t['name'].endswith("Take the batch's restore points in one task")]
    assert len(bulk) == 1 and len(bulk[0]['result']['results'][0]['results']) == 2
    revert = next(t['result'] for t in run.tasks()
                  if t['name'].endswith('Revert to the restore point') and t['host'] == 'db')
    assert revert['results'][0]['action'] == 'reverted', revert.get('msg')
    # nothing left behind, the reverted VM is running again (power state restored)
    for vm in (ok_vm, bad_vm):
        assert inv.vm(GuestRef(name=vm.name)).snapshot is None
    assert inv.power_state(GuestRef(name=bad_vm.name)) == 'running'
    # the password (from the environment) is in no task's output
    assert '"%s"' % env['VMWARE_PASSWORD'] not in json.dumps(run.data)
    assert os.environ.get('VMWARE_PASSWORD') is None  # the test did not leak into its own process

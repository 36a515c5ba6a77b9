"""savepoint.virt.snapshot / snapshot_info with guests entries of two providers, through
ansible-playbook, on vcsim and the local OpenStack: on the controller path (live progress, the
module run in-process) and as a module (AnsiballZ, which must pack the cross-provider backend).
Connection options once each: VMware's in module_defaults, OpenStack's cloud in the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef
from contract.harness_openstack import CLOUD, shared_stack
from contract.harness_vmware import connection
from scripts.ansible_run import run_playbook

pytestmark = [pytest.mark.vmware, pytest.mark.openstack]
BOOK = Path(__file__).resolve().parent / 'playbooks' / 'cross_provider' / 'set.yml'


@pytest.mark.parametrize('live', [True, False], ids=['controller', 'module'])
def test_one_set_over_vmware_and_openstack_through_the_modules(vcsim_inventory, servers, live):
    vm = vcsim_inventory.new_vm()
    server = servers.boot()
    vmware = connection(vcsim_inventory.server)
    env = dict(shared_stack().environ(), OS_CLOUD=CLOUD)
    run = run_playbook(BOOK, {'xprov_vm': vm.name, 'xprov_server': server.name, 'xprov_vmware': vmware,
                              'savepoint_live_progress': live}, env=env)
    assert run.rc == 0, [t['result'].get('msg') for t in run.tasks() if t['result'].get('failed')]

    check = run.result('Check mode and diff')
    assert [(r['provider'], r['action']) for r in check['results']] == [
        ('vmware', 'would create'), ('openstack', 'would create')]
    assert '# guest %s' % vm.name in check['diff']['after'] and 'xprov' in check['diff']['after']

    made = run.result('Take the set')
    assert made['changed'] is True and made['provider'] == 'openstack+vmware'
    assert [(r['provider'], r['guest']['name'], r['action']) for r in made['results']] == [
        ('vmware', vm.name, 'created'), ('openstack', server.name, 'created')]

    info = run.result('List the set')
    assert [(g['provider'], [s['name'] for s in g['snapshots']]) for g in info['guests']] == [
        ('vmware', ['xprov']), ('openstack', ['xprov'])]

    mismatch = run.result('An entry of another provider than the task\'s provider option is refused')
    assert mismatch['failed'] is True and mismatch['changed'] is False
    assert "provider 'openstack' differs from the task's provider option 'vmware'" in mismatch['msg']
    assert 'Traceback' not in json.dumps(mismatch)

    reverted = run.result('Revert the set')
    assert [(r['provider'], r['action']) for r in reverted['results']] == [
        ('vmware', 'reverted'), ('openstack', 'reverted')]
    removed = run.result('Remove the set')
    assert [(r['provider'], r['action']) for r in removed['results']] == [
        ('vmware', 'deleted'), ('openstack', 'deleted')]
    again = run.result('Remove it again (nothing to do)')
    assert again['changed'] is False and {r['action'] for r in again['results']} == {'absent'}

    # read from the providers themselves: nothing left
    assert vcsim_inventory.vm(GuestRef(name=vm.name)).snapshot is None
    sdk = servers.conn
    assert [i.name for i in sdk.image.images(owner=sdk.current_project_id) if i.instance_uuid == server.id] == []
    # vcsim's password is in no task's output
    assert '"%s"' % vmware['password'] not in json.dumps(run.data)

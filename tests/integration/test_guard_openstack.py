"""The guard role on the local OpenStack: hosts on a local connection (their servers have no OS),
restore points as server images taken in one bulk task, a failed change reverted (rebuild)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from contract.harness_openstack import shared_stack
from scripts.ansible_run import run_playbook

pytestmark = pytest.mark.openstack
HERE = Path(__file__).resolve().parent / 'playbooks' / 'guard'


def test_guard_on_openstack_reverts_the_failed_server_only(tmp_path, servers):
    ok, bad = servers.boot(), servers.boot()
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {
        'hosts': {ok.name: {}, 'db': {'savepoint_guest': bad.name}},
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                 'savepoint_provider': 'openstack', 'savepoint_connection': {'cloud': 'stack-demo'}}}}))
    env = dict(shared_stack().environ(), ANSIBLE_INVENTORY=str(inventory), ANSIBLE_SHOW_CUSTOM_STATS='true')
    run = run_playbook(HERE / 'guard.yml', {'guard_change_tasks': str(HERE / 'local_change.yml'),
                                            'guard_test_fail': ['db']}, env=env)
    stats = run.data.get('global_custom_stats', {}).get('savepoint_guard', {})
    assert {h: s['outcome'] for h, s in stats.items()} == {ok.name: 'succeeded', 'db': 'reverted'}, \
        [s.get('msg') for s in stats.values()]
    assert run.rc != 0 and stats['db']['provider'] == 'openstack' and stats['db']['guest'] == bad.name
    bulk = [t for t in run.tasks() if t['name'].endswith("Take the batch's restore points in one task")]
    assert len(bulk) == 1 and len(bulk[0]['result']['results'][0]['results']) == 2
    revert = next(t['result'] for t in run.tasks()
                  if t['name'].endswith('Revert to the restore point') and t['host'] == 'db')
    assert revert['results'][0]['action'] == 'reverted', revert.get('msg')
    sdk = servers.conn
    assert sdk.compute.get_server(bad.id).status == 'ACTIVE'  # power state from before the change
    # both restore points (images) are gone again
    owned = [i for i in sdk.image.images(owner=sdk.current_project_id) if i.instance_uuid in (ok.id, bad.id)]
    assert owned == [], [i.name for i in owned]

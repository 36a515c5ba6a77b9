"""savepoint.virt.prune (role, run by FQCN playbook) on every provider, with foreign snapshots present.

Foreign = made by hand through the provider's own API (no marker) and made by
this collection for ANOTHER owner: neither may ever be removed.
"""

from __future__ import annotations

import json

from .conftest import SECRET, owned, wait_past
from .helpers import prune_results, run_fqcn, write_inventory

EXPIRY = 2  # seconds: an owned snapshot that is expired by the time the role runs


def hostvars(world, guest, by_uuid=False):
    hv = {'savepoint_provider': world.provider, 'savepoint_connection': world.connection()}
    if by_uuid:
        hv['savepoint_guest_uuid'] = guest['uuid']
    else:
        hv['savepoint_guest'] = guest['name']
    return hv


def test_prune_removes_only_owned_snapshots_the_rules_select(world, tmp_path):
    one, two = world.new_guest(), world.new_guest()
    for guest in (one, two):
        world.foreign(guest, 'by-hand')
        owned(world, guest, 'other-team', owner='other-team', expires_in='%ds' % EXPIRY)
        owned(world, guest, 'expired', expires_in='%ds' % EXPIRY)
    owned(world, one, 'fresh1')
    owned(world, one, 'fresh2')
    owned(world, one, 'fresh3')
    wait_past(EXPIRY + 1)
    # one host maps by name, the other by UUID; both land in ONE task of this provider
    inventory = write_inventory(tmp_path, {'web': hostvars(world, one), 'db': hostvars(world, two, by_uuid=True)})
    before = {'web': world.names(one), 'db': world.names(two)}

    checked = run_fqcn('prune', inventory, {'target_hosts': 'fleet', 'prune_keep_last': 2}, check=True)
    assert checked.rc == 0, json.dumps(checked.data)[-3000:]
    results = prune_results(checked)
    assert list(results) == [world.provider]
    would = {r['guest']['name']: sorted(s['name'] for s in r['removed']) for r in results[world.provider]['results']}
    assert would == {one['name']: ['expired', 'fresh1'], two['name']: ['expired']}
    summary = checked.result('What was pruned on %s' % world.provider)['msg']
    assert any('would remove' in line and 'fresh1' in line for line in summary), summary
    assert {'web': world.names(one), 'db': world.names(two)} == before  # check mode wrote nothing

    run = run_fqcn('prune', inventory, {'target_hosts': 'fleet', 'prune_keep_last': 2})
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    assert prune_results(run)[world.provider]['changed'] is True
    assert world.names(one) == ['by-hand', 'fresh2', 'fresh3', 'other-team']
    assert world.names(two) == ['by-hand', 'other-team']

    again = run_fqcn('prune', inventory, {'target_hosts': 'fleet', 'prune_keep_last': 2})
    assert again.rc == 0 and prune_results(again)[world.provider]['changed'] is False

    # older_than: everything owned is older than 1s by now, and still nothing foreign goes
    old = run_fqcn('prune', inventory, {'target_hosts': 'fleet', 'prune_older_than': '1s'})
    assert old.rc == 0, json.dumps(old.data)[-3000:]
    assert world.names(one) == ['by-hand', 'other-team'] and world.names(two) == ['by-hand', 'other-team']

    # the other owner prunes its own expired ones, never ours or the hand-made
    theirs = run_fqcn('prune', inventory, {'target_hosts': 'fleet', 'prune_owner': 'other-team'})
    assert theirs.rc == 0
    for done in (checked, run, again, old, theirs):
        assert SECRET not in json.dumps(done.data) + done.stderr
    assert world.names(one) == ['by-hand'] and world.names(two) == ['by-hand']

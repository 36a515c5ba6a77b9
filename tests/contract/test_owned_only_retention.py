"""Owned-only retention, on every provider: state=pruned never removes a snapshot it does not own.

Each guest holds, next to three snapshots of the default owner, the foreign kinds a real
inventory has: one taken by hand (no marker), one of another owner that is long expired, one of
another owner that never expires, and one whose description merely looks like a marker. A
retention rule with every criterion at once (keep_last: 0, older_than and expired: a snapshot is
removed when any one selects it) must remove exactly the owned ones and leave every foreign one
as it was.
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request
from ansible_collections.savepoint.virt.plugins.module_utils._model import Marker, SnapshotSpec, utcnow
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import DEFAULT_OWNER, make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._retention import RetentionRule

OWNED = ('own-1', 'own-2', 'own-3')
FOREIGN = ('handmade', 'team-b-expired', 'team-b-forever', 'looks-like-a-marker')


def _create(provider, ref, name, marker, description=''):
    result = provider.run(Request(state='present', guests=[ref], snapshot_name=name,
                                  spec=SnapshotSpec(name=name, marker=marker, description=description)))
    assert result['changed'], result['msg']


def _seed(provider, ref):
    past = utcnow() - datetime.timedelta(days=3)
    _create(provider, ref, 'handmade', None, 'taken by an operator')
    _create(provider, ref, 'team-b-expired', Marker(owner='team-b', created_by='other', expires_at=past))
    _create(provider, ref, 'team-b-forever', Marker(owner='team-b', created_by='other'))
    # Where the marker lives in the description (libvirt, VMware) this is a hand-edited, unreadable
    # marker; where it does not (OpenStack) it is just text. Either way: not owned.
    _create(provider, ref, 'looks-like-a-marker', None,
            '[savepoint.virt] {"owner": 5, "expires_at": 1}')
    for name in OWNED:
        _create(provider, ref, name, make_marker(None, 'owned-only-suite', '1s'))


# A snapshot is removed when ANY criterion selects it, so one rule with all three criteria tries
# every way a foreign snapshot could be selected (expired, old, beyond keep_last) at once.
RULE = dict(keep_last=0, older_than=datetime.timedelta(seconds=1), expired=True)


def test_pruned_never_removes_a_foreign_snapshot(provider):
    ref = provider.new_guest()
    _seed(provider, ref)
    before = {s.name: s for s in provider.snapshots(ref)}
    assert sorted(before) == sorted(OWNED + FOREIGN)
    time.sleep(2.1)   # owned snapshots expire after 1s and must be older than older_than (1s)
    result = provider.run(Request(state='pruned', guests=[ref], retention=RetentionRule(**RULE),
                                  owner=DEFAULT_OWNER))
    removed = sorted(s['name'] for s in result['results'][0]['removed'])
    assert removed == sorted(OWNED), result['msg']
    if before['looks-like-a-marker'].marker_problem:  # where markers live in descriptions: said, by name
        assert any("'looks-like-a-marker'" in w and 'unreadable' in w for w in result['warnings']), result
    else:
        assert provider.name == 'openstack', 'the hand-edited marker was not reported as unreadable'
    after = {s.name: s for s in provider.snapshots(ref)}
    assert sorted(after) == sorted(FOREIGN)
    for name in FOREIGN:
        assert (after[name].owner, after[name].expires_at, after[name].description) == (
            before[name].owner, before[name].expires_at, before[name].description), name
    # A second run finds nothing more to remove.
    again = provider.run(Request(state='pruned', guests=[ref], retention=RetentionRule(**RULE),
                                 owner=DEFAULT_OWNER))
    assert again['changed'] is False and again['results'][0]['removed'] == []


def test_pruned_for_another_owner_removes_only_that_owners_snapshots(provider):
    ref = provider.new_guest()
    _seed(provider, ref)
    result = provider.run(Request(state='pruned', guests=[ref], retention=RetentionRule(keep_last=0),
                                  owner='team-b'))
    assert sorted(s['name'] for s in result['results'][0]['removed']) == ['team-b-expired', 'team-b-forever']
    assert sorted(s.name for s in provider.snapshots(ref)) == sorted(OWNED + ('handmade', 'looks-like-a-marker'))

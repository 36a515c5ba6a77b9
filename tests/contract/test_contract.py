"""Behaviour every provider must show, written once, run against every harness."""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    GuestNotFoundError, SnapshotConflictError, SnapshotNotFoundError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._retention import RetentionRule


def names(provider, ref):
    return sorted(s.name for s in provider.snapshots(ref))


def by_name(provider, ref):
    return {s.name: s for s in provider.snapshots(ref)}


def test_create_is_idempotent_and_records_ownership(provider):
    ref = provider.new_guest()
    first = provider.create(ref, 'pre-patch', expires_in='7d', description='before patching')
    assert first['changed'] is True and first['action'] == 'created'
    snap = first['snapshot']
    assert snap['name'] == 'pre-patch' and snap['current'] is True
    assert snap['owner'] == 'savepoint.virt' and snap['expires_at'].endswith('Z')
    assert snap['created_at'].endswith('Z') and snap['description'] == 'before patching'
    assert first['guest']['name'] == (ref.name or first['guest']['name'])
    second = provider.create(ref, 'pre-patch', expires_in='7d', description='before patching')
    assert second['changed'] is False and second['action'] == 'exists'
    assert names(provider, ref) == ['pre-patch']


def test_same_name_other_options_fails_and_changes_nothing(provider):
    ref = provider.new_guest()
    provider.create(ref, 'snap', description='one')
    before = provider.snapshots(ref)
    with pytest.raises(SnapshotConflictError, match="description is 'one', asked 'two'"):
        provider.create(ref, 'snap', description='two')
    assert provider.snapshots(ref) == before


@pytest.mark.parametrize('state', ['present', 'absent', 'reverted'])
def test_check_mode_changes_nothing(provider, state):
    ref = provider.new_guest()
    provider.create(ref, 'a')
    provider.create(ref, 'b')
    before = provider.snapshots(ref)
    power = provider.power_state(ref)
    target = {'present': 'c', 'absent': 'b', 'reverted': 'a'}[state]
    spec = SnapshotSpec(name=target) if state == 'present' else None
    result = provider.run(Request(state=state, guests=[ref], snapshot_name=target, spec=spec,
                                  power_state='off' if state == 'reverted' else 'restore'),
                          check_mode=True, diff=True)
    assert result['changed'] is True and result['action'].startswith('would ')
    assert result['diff']['before'] != result['diff']['after']
    assert provider.snapshots(ref) == before
    assert provider.power_state(ref) == power


def test_tree_branches_after_revert_to_a_non_latest_snapshot(provider):
    ref = provider.new_guest()
    for name in ('a', 'b', 'c'):
        provider.create(ref, name)
    tree = by_name(provider, ref)
    assert tree['b'].parent == 'a' and tree['c'].parent == 'b' and tree['c'].current
    result = provider.run(Request(state='reverted', guests=[ref], snapshot_name='a'))
    assert result['changed'] is True and result['action'] == 'reverted'
    assert [s.name for s in provider.snapshots(ref) if s.current] == ['a']
    provider.create(ref, 'd')
    tree = by_name(provider, ref)
    assert tree['d'].parent == 'a' and sorted(tree['a'].children) == ['b', 'd']


@pytest.mark.parametrize('power_state,expected', [('off', 'off'), ('on', 'running')])
def test_power_state_after_revert_is_enforced(provider, power_state, expected):
    ref = provider.new_guest()
    provider.create(ref, 'base')
    result = provider.run(Request(state='reverted', guests=[ref], snapshot_name='base', power_state=power_state))
    assert provider.power_state(ref) == expected
    # The result reports the guest as read back after the revert, not as it was before.
    assert result['guest']['power_state'] == expected


def test_delete_reparents_children_or_removes_the_subtree(provider):
    ref = provider.new_guest()
    for name in ('a', 'b', 'c'):
        provider.create(ref, name)
    result = provider.run(Request(state='absent', guests=[ref], snapshot_name='b'))
    assert result['changed'] is True
    tree = by_name(provider, ref)
    assert sorted(tree) == ['a', 'c'] and tree['c'].parent == 'a'
    provider.run(Request(state='absent', guests=[ref], snapshot_name='a', remove_children=True))
    assert names(provider, ref) == []
    again = provider.run(Request(state='absent', guests=[ref], snapshot_name='a'))
    assert again['changed'] is False and again['action'] == 'absent'


def test_missing_guest_and_missing_snapshot_are_clear_errors(provider):
    ref = provider.new_guest()
    provider.create(ref, 'a')
    with pytest.raises(GuestNotFoundError):
        provider.run(Request(state='present', guests=[GuestRef(name='no-such-guest-%s' % provider.name)],
                             snapshot_name='x', spec=SnapshotSpec(name='x')))
    with pytest.raises(SnapshotNotFoundError, match="no snapshot 'nope'"):
        provider.run(Request(state='reverted', guests=[ref], snapshot_name='nope'))
    assert names(provider, ref) == ['a']


def test_prune_removes_only_owned_snapshots(provider):
    ref = provider.new_guest()
    provider.create(ref, 'handmade', owned=False)
    for name in ('old', 'mid', 'new'):
        provider.create(ref, name)
    result = provider.run(Request(state='pruned', guests=[ref], retention=RetentionRule(keep_last=1),
                                  owner='savepoint.virt'))
    assert result['changed'] is True
    assert sorted(s['name'] for s in result['results'][0]['removed']) == ['mid', 'old']
    assert names(provider, ref) == ['handmade', 'new']


def test_snapshot_set_on_two_guests(provider):
    refs = [provider.new_guest(), provider.new_guest()]
    spec = SnapshotSpec(name='release')
    created = provider.run(Request(state='present', guests=refs, snapshot_name='release', spec=spec))
    assert [r['action'] for r in created['results']] == ['created', 'created']
    again = provider.run(Request(state='present', guests=refs, snapshot_name='release', spec=spec))
    assert again['changed'] is False
    reverted = provider.run(Request(state='reverted', guests=refs, snapshot_name='release'))
    assert [r['action'] for r in reverted['results']] == ['reverted', 'reverted']
    provider.run(Request(state='absent', guests=refs, snapshot_name='release'))
    assert all(names(provider, ref) == [] for ref in refs)


def test_info_reports_the_tree(provider):
    ref = provider.new_guest()
    provider.create(ref, 'a')
    provider.create(ref, 'b')
    with provider.backend() as backend:
        from ansible_collections.savepoint.virt.plugins.module_utils._engine import SnapshotEngine
        report = SnapshotEngine(backend).info([ref])
    assert report['guests'][0]['current'] == 'b'
    assert report['guests'][0]['tree'].splitlines()[-1].strip().startswith('b')
    assert [s['name'] for s in report['snapshots']] == ['a', 'b'] or sorted(
        s['name'] for s in report['snapshots']) == ['a', 'b']


def test_remove_all_empties_the_tree_and_then_reports_unchanged(provider):
    ref = provider.new_guest()
    for name in ('a', 'b'):
        provider.create(ref, name)
    provider.run(Request(state='reverted', guests=[ref], snapshot_name='a'))
    provider.create(ref, 'c')
    result = provider.run(Request(state='absent', guests=[ref], remove_all=True))
    assert result['changed'] is True
    assert sorted(s['name'] for s in result['results'][0]['removed']) == ['a', 'b', 'c']
    assert names(provider, ref) == []
    again = provider.run(Request(state='absent', guests=[ref], remove_all=True))
    assert again['changed'] is False and again['action'] == 'absent'

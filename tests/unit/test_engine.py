"""Engine logic against the in-memory backend: idempotency, check mode, sets, diff, errors."""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    ProviderError,
    AmbiguousSnapshotError, GuestNotFoundError, InvalidRequestError, PartialFailureError,
    QuiesceUnavailableError, SnapshotConflictError, SnapshotNotFoundError, UnsupportedError, WaitTimeoutError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import (
    Capabilities, GuestRef, SnapshotRecord, SnapshotSpec,
)
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._retention import RetentionRule
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from memory_backend import MemoryBackend


def fast_policy(timeout=5.0):
    return WaitPolicy(timeout=timeout, initial_delay=0.0, max_delay=0.0, sleep=lambda _s: None)


def present(name='s1', guests=('vm1',), **spec):
    marker = spec.pop('marker', make_marker(None, 'test'))
    return Request(state='present', guests=[GuestRef(name=g) for g in guests], snapshot_name=name,
                   spec=SnapshotSpec(name=name, marker=marker, **spec))


def request(state, name='s1', guests=('vm1',), **kw):
    return Request(state=state, guests=[GuestRef(name=g) for g in guests], snapshot_name=name, **kw)


@pytest.fixture
def backend():
    return MemoryBackend({'vm1': 'running', 'vm2': 'running', 'vm3': 'off'})


def engine(backend, **kw):
    kw.setdefault('wait_policy', fast_policy())
    return SnapshotEngine(backend, **kw)


# -- idempotency matrix ----------------------------------------------------------
def test_present_creates_then_reports_exists(backend):
    first = engine(backend).run(present(description='before patch'))
    assert first['changed'] is True and first['action'] == 'created'
    assert first['snapshot']['name'] == 's1' and first['snapshot']['owner'] == 'savepoint.virt'
    assert first['results'][0]['cost']['guest_blocked_seconds'] == 0.01
    second = engine(backend).run(present(description='before patch'))
    assert second['changed'] is False and second['action'] == 'exists'
    assert [w[0] for w in backend.writes] == ['create']


@pytest.mark.parametrize('spec,why', [
    ({'memory': False}, 'memory is True, asked False'),
    ({'kind': 'external'}, "kind is 'internal', asked 'external'"),
    ({'description': 'other'}, "description is 'x', asked 'other'"),
])
def test_present_with_different_options_is_a_conflict(backend, spec, why):
    engine(backend).run(present(description='x', memory=True))
    with pytest.raises(SnapshotConflictError) as err:
        engine(backend).run(present(**spec))
    assert why in err.value.msg
    assert len(backend.writes) == 1


def test_absent_deletes_then_reports_absent(backend):
    engine(backend).run(present())
    gone = engine(backend).run(request('absent'))
    assert gone['changed'] is True and gone['action'] == 'deleted'
    again = engine(backend).run(request('absent'))
    assert again['changed'] is False and again['action'] == 'absent'


def test_revert_always_reverts_and_says_why(backend):
    engine(backend).run(present())
    result = engine(backend).run(request('reverted'))
    assert result['changed'] is True and result['action'] == 'reverted'
    assert 'it was the current snapshot; reverted anyway' in result['msg']
    again = engine(backend).run(request('reverted'))
    assert again['changed'] is True
    assert [w[0] for w in backend.writes] == ['create', 'revert', 'revert']


def test_revert_to_missing_snapshot_names_what_exists(backend):
    engine(backend).run(present('a'))
    with pytest.raises(SnapshotNotFoundError) as err:
        engine(backend).run(request('reverted', 'nope'))
    assert "has no snapshot 'nope'" in err.value.msg and '(it has: a)' in err.value.msg


def test_missing_guest_is_an_error(backend):
    with pytest.raises(GuestNotFoundError):
        engine(backend).run(present(guests=('vm9',)))


def test_duplicate_names_are_never_guessed(backend):
    backend.snapshots['vm1'] = [SnapshotRecord(name='dup', id='a'), SnapshotRecord(name='dup', id='b')]
    for state in ('absent', 'reverted'):
        with pytest.raises(AmbiguousSnapshotError):
            engine(backend).run(request(state, 'dup'))
    assert backend.writes == []


def test_same_guest_twice_is_refused(backend):
    with pytest.raises(InvalidRequestError):
        engine(backend).run(present(guests=('vm1', 'vm1')))


# -- check mode ---------------------------------------------------------------------
@pytest.mark.parametrize('state', ['present', 'absent', 'reverted', 'pruned'])
def test_check_mode_never_writes(backend, state):
    engine(backend).run(present('old', marker=make_marker(None, 't', '1s')))
    engine(backend).run(present('s1'))
    writes = list(backend.writes)
    if state == 'present':
        req = present('s2')
    elif state == 'pruned':
        req = request('pruned', None, retention=RetentionRule(keep_last=0), owner='savepoint.virt')
    else:
        req = request(state, 'old' if state == 'reverted' else 's1')
    result = engine(backend, check_mode=True, diff=True).run(req)
    assert backend.writes == writes
    assert result['changed'] is True
    assert result['action'].startswith('would ')
    assert 'check mode' in result['msg']
    assert result['diff']['before'] != result['diff']['after']


def test_check_mode_reports_unchanged_when_nothing_to_do(backend):
    engine(backend).run(present())
    result = engine(backend, check_mode=True).run(present())
    assert result['changed'] is False and result['action'] == 'exists'


# -- diff ------------------------------------------------------------------------------
def test_diff_shows_tree_before_and_after(backend):
    engine(backend).run(present('a'))
    result = engine(backend, diff=True).run(present('b'))
    assert result['diff']['before'] == 'a (current)\n'
    assert result['diff']['after'] == 'a\n  b (current)\n'


def test_check_mode_diff_predicts_reparenting(backend):
    for name in ('a', 'b', 'c'):
        engine(backend).run(present(name))
    result = engine(backend, check_mode=True, diff=True).run(request('absent', 'b'))
    assert result['diff']['after'] == 'a\n  c (current)\n'
    result = engine(backend, check_mode=True, diff=True).run(request('absent', 'b', remove_children=True))
    assert result['diff']['after'] == 'a\n'


# -- capabilities: refuse clearly, soften only "preferred" ----------------------------------
def test_quiesce_required_without_agent_fails_before_any_write(backend):
    backend.caps = Capabilities(quiesce=False, reasons={'quiesce': 'no guest agent'})
    with pytest.raises(QuiesceUnavailableError) as err:
        engine(backend).run(present(quiesce='required'))
    assert 'no guest agent' in err.value.msg
    assert backend.writes == []


def test_quiesce_preferred_falls_back_and_says_so(backend):
    backend.caps = Capabilities(quiesce=False, reasons={'quiesce': 'no guest agent'})
    result = engine(backend).run(present(quiesce='preferred'))
    assert result['changed'] is True
    assert result['snapshot']['quiesced'] is False
    assert any('no guest agent' in w for w in result['warnings'])


@pytest.mark.parametrize('caps,spec,state', [
    (Capabilities(external=False, reasons={'external': 'no overlays here'}), {'kind': 'external'}, 'present'),
    (Capabilities(memory=False, reasons={'memory': 'guest is off'}), {'memory': True}, 'present'),
])
def test_unsupported_requests_change_nothing(backend, caps, spec, state):
    backend.caps = caps
    with pytest.raises(UnsupportedError) as err:
        engine(backend).run(present(**spec))
    assert list(caps.reasons.values())[0] in err.value.msg
    assert backend.writes == []


def test_revert_to_external_refused_where_unsupported(backend):
    backend.snapshots['vm1'] = [SnapshotRecord(name='ext', id='e', kind='external')]
    backend.caps = Capabilities(revert_external=False, reasons={'revert_external': 'not supported by libvirt 9.0.0'})
    with pytest.raises(UnsupportedError, match='libvirt 9.0.0'):
        engine(backend).run(request('reverted', 'ext'))
    assert backend.writes == []


# -- tree operations -------------------------------------------------------------------------
def test_delete_keeps_or_removes_children(backend):
    for name in ('a', 'b', 'c'):
        engine(backend).run(present(name))
    engine(backend).run(request('absent', 'b'))
    snaps = {s.name: s for s in backend.list_snapshots(backend.guests['vm1'])}
    assert set(snaps) == {'a', 'c'} and snaps['c'].parent == 'a'
    engine(backend).run(request('absent', 'a', remove_children=True))
    assert backend.snapshots['vm1'] == []


def test_revert_to_a_non_latest_snapshot(backend):
    for name in ('a', 'b', 'c'):
        engine(backend).run(present(name))
    result = engine(backend).run(request('reverted', 'a', power_state='off'))
    assert result['changed'] is True and 'power state off' in result['msg']
    current = [s.name for s in backend.snapshots['vm1'] if s.current]
    assert current == ['a']
    assert backend.writes[-1] == ('revert', 'vm1', 'a', 'off')


# -- snapshot sets and bulk ------------------------------------------------------------------------
def test_set_is_created_on_every_guest(backend):
    result = engine(backend).run(present('rel', guests=('vm1', 'vm2', 'vm3')))
    assert result['changed'] is True and result['snapshot'] is None
    assert [r['action'] for r in result['results']] == ['created'] * 3
    assert 'created on 3 guests' in result['msg']


def test_set_is_rolled_back_when_one_guest_fails(backend):
    backend.fail_create_on = {'vm2'}
    with pytest.raises(PartialFailureError) as err:
        engine(backend).run(present('rel', guests=('vm1', 'vm2', 'vm3')))
    assert "'vm2': disk full on vm2" in err.value.msg
    assert 'rolled back' in err.value.msg
    assert all(not snaps for snaps in backend.snapshots.values())
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert results['vm1']['rolled_back'] and results['vm3']['rolled_back']
    assert results['vm2']['action'] == 'failed'


def test_best_effort_bulk_keeps_what_worked(backend):
    backend.fail_create_on = {'vm2'}
    with pytest.raises(PartialFailureError) as err:
        engine(backend).run(Request(state='present', guests=[GuestRef(name=g) for g in ('vm1', 'vm2')],
                                    snapshot_name='s', all_or_nothing=False, spec=SnapshotSpec(name='s')))
    assert 'rolled back' not in err.value.msg
    assert [s.name for s in backend.snapshots['vm1']] == ['s']


def test_set_completes_on_guests_that_miss_it(backend):
    engine(backend).run(present('rel', guests=('vm1',)))
    result = engine(backend).run(present('rel', guests=('vm1', 'vm2')))
    assert [r['action'] for r in result['results']] == ['exists', 'created']


def test_set_revert_checks_every_guest_first(backend):
    engine(backend).run(present('rel', guests=('vm1', 'vm2')))
    with pytest.raises(SnapshotNotFoundError):
        engine(backend).run(request('reverted', 'rel', guests=('vm1', 'vm2', 'vm3')))
    assert [w[0] for w in backend.writes] == ['create', 'create']


def test_wait_false_refused_for_sets(backend):
    req = present('rel', guests=('vm1', 'vm2'))
    req.wait = False
    with pytest.raises(InvalidRequestError, match='roll back'):
        engine(backend).run(req)


# -- waiting -------------------------------------------------------------------------------------------
def test_operations_are_waited_for_together(backend):
    backend.polls = 3
    result = engine(backend).run(present('s', guests=('vm1', 'vm2')))
    assert all(op['done'] for r in result['results'] for op in r['operations'])
    assert [r['action'] for r in result['results']] == ['created', 'created']


def test_wait_false_returns_operation_ids(backend):
    backend.polls = 3
    req = present('s')
    req.wait = False
    result = engine(backend).run(req)
    assert result['action'] == 'started' and result['changed'] is True
    op = result['results'][0]['operations'][0]
    assert op['id'].startswith('task-') and op['done'] is False


def test_timeout_is_an_error_naming_what_may_still_run(backend):
    backend.polls = 10 ** 9
    clock = iter(range(0, 10 ** 6)).__next__
    policy = WaitPolicy(timeout=5, initial_delay=0, max_delay=0, sleep=lambda _s: None, clock=clock)
    with pytest.raises(WaitTimeoutError) as err:
        SnapshotEngine(backend, wait_policy=policy).run(present('s'))
    assert 'did not finish within 5s' in err.value.msg and 'check before retrying' in err.value.msg


def test_progress_lines_on_long_waits(backend):
    backend.polls = 50
    ticks = iter(range(0, 10 ** 6))
    lines = []
    policy = WaitPolicy(timeout=1000, initial_delay=0, max_delay=0, progress_every=10, sleep=lambda _s: None,
                        clock=lambda: next(ticks))
    SnapshotEngine(backend, wait_policy=policy, progress=lines.append).run(present('s'))
    assert lines and lines[0].startswith('still waiting for create vm1')


# -- pruning -----------------------------------------------------------------------------------------------
def test_prune_only_touches_owned_snapshots(backend):
    engine(backend).run(present('mine-1'))
    engine(backend).run(present('theirs', marker=None))
    engine(backend).run(present('other-owner', marker=make_marker('team-b', 't')))
    engine(backend).run(present('mine-2'))
    result = engine(backend).run(request('pruned', None, retention=RetentionRule(keep_last=0), owner='savepoint.virt'))
    assert [s['name'] for s in result['results'][0]['removed']] == ['mine-1', 'mine-2']
    assert [s.name for s in backend.snapshots['vm1']] == ['theirs', 'other-owner']
    again = engine(backend).run(request('pruned', None, retention=RetentionRule(keep_last=0), owner='savepoint.virt'))
    assert again['changed'] is False and again['action'] == 'kept'


def test_a_create_the_provider_does_not_show_is_a_failure_and_the_set_is_rolled_back(backend):
    real_list = backend.list_snapshots

    def hides_vm2(guest):
        found = real_list(guest)
        return [] if guest.name == 'vm2' else found
    backend.list_snapshots = hides_vm2
    with pytest.raises(PartialFailureError) as err:
        engine(backend).run(present('rel', guests=('vm1', 'vm2')))
    assert "reported snapshot 'rel' of guest 'vm2' as created, but it is not there" in err.value.msg
    assert backend.snapshots['vm1'] == []


def test_wait_false_refused_for_pruning(backend):
    req = request('pruned', None, retention=RetentionRule(keep_last=0), owner='savepoint.virt')
    req.wait = False
    with pytest.raises(InvalidRequestError, match='pruned'):
        engine(backend).run(req)


def test_rollback_also_removes_a_create_whose_outcome_was_unknown(backend):
    real_create = backend.start_create

    def created_then_lost(guest, spec):
        op = real_create(guest, spec)
        if guest.name == 'vm2':  # the snapshot was made, but the answer never arrived
            op.finish(error=ProviderError('connection lost: the snapshot may have been created'))
        return op
    backend.start_create = created_then_lost
    with pytest.raises(PartialFailureError) as err:
        engine(backend).run(present('rel', guests=('vm1', 'vm2')))
    assert 'snapshot set rolled back: rel removed from vm1, vm2' in err.value.msg
    assert backend.snapshots['vm1'] == [] and backend.snapshots['vm2'] == []


def test_rollback_that_cannot_check_says_so(backend):
    backend.fail_create_on = {'vm2'}
    real_list = backend.list_snapshots
    calls = {'n': 0}

    def list_then_break(guest):
        calls['n'] += 1
        if calls['n'] > 4:   # after the look phase and the read-back, the provider is gone
            raise ProviderError('connection refused')
        return real_list(guest)
    backend.list_snapshots = list_then_break
    with pytest.raises(PartialFailureError) as err:
        engine(backend).run(present('rel', guests=('vm1', 'vm2', 'vm3')))
    assert 'ROLLBACK INCOMPLETE, check by hand' in err.value.msg and 'connection refused' in err.value.msg


def test_remove_all_deletes_every_branch_and_is_idempotent(backend):
    for name in ('a', 'b'):
        engine(backend).run(present(name))
    engine(backend).run(request('reverted', 'a'))
    engine(backend).run(present('c'))
    backend.snapshots['vm1'].append(SnapshotRecord(name='other-root', id='r2'))
    writes = len(backend.writes)
    checked = engine(backend, check_mode=True, diff=True).run(request('absent', None, remove_all=True))
    assert checked['changed'] is True and checked['diff']['after'] == '' and len(backend.writes) == writes
    result = engine(backend).run(request('absent', None, remove_all=True))
    assert result['changed'] is True
    assert sorted(s['name'] for s in result['results'][0]['removed']) == ['a', 'b', 'c', 'other-root']
    assert backend.snapshots['vm1'] == []
    assert backend.writes[writes:] == [('delete', 'vm1', 'a', True), ('delete', 'vm1', 'other-root', True)]
    again = engine(backend).run(request('absent', None, remove_all=True))
    assert again['changed'] is False and again['msg'] == "guest 'vm1' has no snapshots"


@pytest.mark.parametrize('kw', [{'state': 'present'}, {'state': 'absent', 'name': 'x'}])
def test_remove_all_needs_absent_without_a_name(backend, kw):
    state = kw.pop('state')
    with pytest.raises(InvalidRequestError, match='remove_all'):
        engine(backend).run(request(state, kw.get('name'), remove_all=True))


def test_provider_options_take_part_in_the_conflict_check(backend):
    engine(backend).run(present())
    backend.option_conflicts = lambda existing, spec: (
        ['volumes are not included, asked include_volumes: true'] if spec.options.get('include_volumes') else [])
    with pytest.raises(SnapshotConflictError, match='include_volumes'):
        engine(backend).run(present(options={'include_volumes': True}))
    assert engine(backend).run(present())['action'] == 'exists'


def test_prepare_revert_refuses_before_any_guest_is_touched(backend):
    """A provider's revert pre-flight runs in the decide phase: in check mode too, and for every guest
    of a set before the first is reverted."""
    engine(backend).run(present(guests=('vm1', 'vm2')))

    def refuse(guest, snapshot):
        if guest.name == 'vm2':
            raise UnsupportedError('volume v is in-use')
    backend.prepare_revert = refuse
    backend.writes.clear()
    for check_mode in (True, False):
        with pytest.raises(UnsupportedError, match='in-use'):
            engine(backend, check_mode=check_mode).run(request('reverted', guests=('vm1', 'vm2')))
    assert backend.writes == []

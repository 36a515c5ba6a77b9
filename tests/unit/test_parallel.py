"""``parallel``: at most that many guests worked on at once, one deadline that still ends, sets still
rolled back as a whole. Pure engine logic against a hand-written in-memory backend (real-service
test: tests/vmware/test_vmware_parallel.py)."""

from __future__ import annotations

from typing import List

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    InvalidRequestError, PartialFailureError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import Capabilities, GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._options import (
    MAX_PARALLEL, PARALLEL_DEFAULTS, parallel_default, parallel_variable_error, resolve_task_options,
)
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import DEFAULT_OWNER, make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._retention import RetentionRule
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation, WaitPolicy

from memory_backend import MemoryBackend

GUESTS = ['vm%02d' % i for i in range(10)]


class CountingBackend(MemoryBackend):
    """Every operation stays running for ``polls`` polls; records how many were in flight at once."""

    def __init__(self, polls: int = 3, **kw) -> None:
        super().__init__({name: 'running' for name in GUESTS}, polls=polls, **kw)
        self.in_flight: List[Operation] = []
        self.peak = 0
        self.starts: List[str] = []

    def _op(self, action, guest, name, apply):
        self.in_flight = [op for op in self.in_flight if not op.done]
        op = super()._op(action, guest, name, apply)
        self.starts.append('%s %s' % (action, guest.name))
        if not op.done:
            self.in_flight.append(op)
        self.peak = max(self.peak, len(self.in_flight))
        return op


class Clock:
    """A clock that moves one second per reading, so a deadline is reached without sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def policy(timeout: float = 10 ** 6, clock=None) -> WaitPolicy:
    return WaitPolicy(timeout=timeout, initial_delay=0.0, max_delay=0.0, sleep=lambda _s: None,
                      clock=clock or Clock())


def present(parallel=None, guests=GUESTS, **kw) -> Request:
    return Request(state='present', guests=[GuestRef(name=g) for g in guests], snapshot_name='s', parallel=parallel,
                   spec=SnapshotSpec(name='s', marker=make_marker(None, 'test')), **kw)


@pytest.mark.parametrize('parallel', [1, 3, 4, 10])
def test_at_most_parallel_guests_in_flight(parallel):
    backend = CountingBackend()
    result = SnapshotEngine(backend, wait_policy=policy()).run(present(parallel))
    assert backend.peak == parallel
    assert [r['action'] for r in result['results']] == ['created'] * len(GUESTS)


def test_bound_holds_for_revert_delete_and_prune_rounds():
    backend = CountingBackend(polls=0)
    SnapshotEngine(backend, wait_policy=policy()).run(present(10))
    for name in ('t', 'u'):
        SnapshotEngine(backend, wait_policy=policy()).run(Request(
            state='present', guests=[GuestRef(name=g) for g in GUESTS], snapshot_name=name,
            spec=SnapshotSpec(name=name, marker=make_marker(None, 'test'))))
    backend.polls = 2
    for req in (Request(state='reverted', guests=[GuestRef(name=g) for g in GUESTS], snapshot_name='s', parallel=3),
                Request(state='absent', guests=[GuestRef(name=g) for g in GUESTS], snapshot_name='u', parallel=2),
                Request(state='absent', guests=[GuestRef(name=g) for g in GUESTS], remove_all=True, parallel=4)):
        backend.peak = 0
        result = SnapshotEngine(backend, wait_policy=policy()).run(req)
        assert backend.peak == req.parallel, req.state
        assert result['changed'] is True
    assert all(not snaps for snaps in backend.snapshots.values())


def test_one_after_the_other_keeps_the_request_order():
    backend = CountingBackend()
    SnapshotEngine(backend, wait_policy=policy()).run(present(1))
    assert backend.starts == ['create %s' % g for g in GUESTS]


def test_provider_default_when_not_set():
    backend = CountingBackend()
    backend.provider = 'libvirt'   # the default of a provider from the table, not the fallback
    SnapshotEngine(backend, wait_policy=policy()).run(present(None))
    assert backend.peak == PARALLEL_DEFAULTS['libvirt'] == parallel_default('libvirt')
    assert parallel_default('some-new-provider') >= 1


def test_deadline_ends_the_whole_task_and_later_guests_are_not_started():
    backend = CountingBackend(polls=10 ** 9)   # never finishes: only the deadline ends the wait
    clock = Clock()
    with pytest.raises(PartialFailureError) as err:
        SnapshotEngine(backend, wait_policy=policy(timeout=30, clock=clock)).run(present(2, all_or_nothing=False))
    # One deadline for all groups: far from one timeout per group (5 groups of 2).
    assert clock.now < 30 * 2
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert len(results) == len(GUESTS)
    started = {s.split()[1] for s in backend.starts}
    assert started == {'vm00', 'vm01'}
    for name in GUESTS[2:]:
        assert 'was not started' in results[name]['msg'] and 'parallel=2' in results[name]['msg']
    for name in ('vm00', 'vm01'):
        assert 'did not finish within 30s' in results[name]['msg']


def test_set_is_rolled_back_as_a_whole_across_groups():
    backend = CountingBackend(polls=1, fail_create_on={'vm07'})
    with pytest.raises(PartialFailureError) as err:
        SnapshotEngine(backend, wait_policy=policy()).run(present(3))
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert 'disk full' in results['vm07']['msg']
    assert all(not snaps for snaps in backend.snapshots.values())   # every group's snapshot removed again
    assert backend.peak <= 3
    rolled = [name for name, r in results.items() if r.get('rolled_back')]
    assert sorted(rolled) == sorted(set(GUESTS) - {'vm07'}), results


def test_wait_false_waits_for_every_group_but_the_last():
    backend = CountingBackend(polls=2)
    req = present(4, all_or_nothing=False, wait=False)
    result = SnapshotEngine(backend, wait_policy=policy()).run(req)
    assert backend.peak == 4
    actions = [r['action'] for r in result['results']]
    assert actions == ['created'] * 8 + ['started'] * 2


@pytest.mark.parametrize('value,words', [
    (0, ['parallel', 'between 1']), (-3, ['parallel', '-3']), (MAX_PARALLEL + 1, ['parallel', str(MAX_PARALLEL)]),
    (10 ** 400, ['parallel', '401-digit']), (True, ['parallel', 'whole number']), ('4', ['parallel']),
])
def test_bad_values_name_parallel(value, words):
    with pytest.raises(InvalidRequestError) as err:
        resolve_task_options({'state': 'present', 'timeout': None, 'parallel': value}, 'present')
    for word in words:
        assert word in err.value.msg
    backend = CountingBackend()
    with pytest.raises(InvalidRequestError):
        SnapshotEngine(backend, wait_policy=policy()).run(present(value))
    assert backend.writes == []


@pytest.mark.parametrize('value,error', [
    (None, None), (4, None), ('4', None), (' 12 ', None), (1000, None),
    (0, 'prune_parallel must be between 1 (one guest after the other) and 1000, not 0'),
    ('0', 'prune_parallel must be between 1'), ('-1', 'prune_parallel must be between 1'),
    ('', "prune_parallel must be a whole number of guests between 1 and 1000, not ''"),
    ('four', 'prune_parallel must be a whole number'), (2.0, 'prune_parallel must be a whole number'),
    ('9' * 5000, 'prune_parallel must be a whole number'), ('9' * 400, '400-digit number'),
])
def test_role_variables_name_themselves_and_0_or_empty_is_never_unset(value, error):
    found = parallel_variable_error(value, 'prune_parallel')
    assert (found is None) if error is None else (error in found and len(found) < 200), found


def test_parallel_applies_to_every_state():
    for state in ('present', 'absent', 'reverted', 'pruned'):
        assert resolve_task_options({'parallel': 2}, state)['parallel'] == 2
    assert resolve_task_options({}, 'present')['parallel'] is None


class ConsolidatingBackend(CountingBackend):
    """Every guest needs its disks consolidated after a removal."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.caps = Capabilities(consolidate=True)

    def start_consolidate(self, guest, force):
        return self._op('consolidate', guest, '(disks)', lambda: None)


def test_consolidations_after_removals_are_bounded_too():
    backend = ConsolidatingBackend(polls=0)
    SnapshotEngine(backend, wait_policy=policy()).run(present(10))
    backend.polls, backend.peak, backend.starts = 2, 0, []
    result = SnapshotEngine(backend, wait_policy=policy()).run(Request(
        state='absent', guests=[GuestRef(name=g) for g in GUESTS], snapshot_name='s', parallel=3))
    assert backend.peak == 3
    assert [s.split()[0] for s in backend.starts] == ['delete'] * 10 + ['consolidate'] * 10
    assert all(r['msg'].endswith('(disks consolidated)') and not r['warnings'] for r in result['results'])


# -- the sliding window: a new guest starts as soon as one finishes -------------------------------------

class SlowGuestBackend(CountingBackend):
    """Like CountingBackend, but the guests in ``slow`` take ``slow_polls`` polls per operation; ``events``
    is the order of starts and finishes, and a guest never has two operations running at once."""

    def __init__(self, slow=('vm00',), slow_polls: int = 50, **kw) -> None:
        super().__init__(**kw)
        self.slow, self.slow_polls = set(slow), slow_polls
        self.events: List[str] = []

    def _op(self, action, guest, name, apply):
        running = [op for op in self.in_flight if not op.done and op.guest.name == guest.name]
        assert not running, 'two operations at once on %s' % guest.name
        polls = self.polls
        if guest.name in self.slow:
            self.polls = self.slow_polls
        try:
            op = super()._op(action, guest, name, apply)
        finally:
            self.polls = polls
        self.events.append('start %s' % guest.name)
        return op

    def _complete(self, op):
        super()._complete(op)
        self.events.append('finish %s' % op.guest.name)


def test_a_slow_guest_does_not_hold_back_the_others():
    backend = SlowGuestBackend(polls=2)
    result = SnapshotEngine(backend, wait_policy=policy()).run(present(3))
    assert [r['action'] for r in result['results']] == ['created'] * len(GUESTS)
    assert backend.peak == 3
    slow_done = backend.events.index('finish vm00')
    # every other guest was started (and finished) while the slow one was still running; with groups,
    # vm03 would have waited for vm00
    assert all(backend.events.index('start %s' % g) < slow_done for g in GUESTS[1:]), backend.events
    assert all(backend.events.index('finish %s' % g) < slow_done for g in GUESTS[1:]), backend.events
    # and each finish let exactly one new guest in, in the request's order
    assert [e for e in backend.events if e.startswith('start')] == ['start %s' % g for g in GUESTS]


def test_the_next_guest_starts_when_one_finishes_not_when_all_do():
    backend = SlowGuestBackend(slow=('vm00', 'vm01'), slow_polls=20, polls=2)
    SnapshotEngine(backend, wait_policy=policy()).run(present(3))
    starts = [e for e in backend.events if e.startswith('start')]
    first = backend.events.index('finish vm02')
    # vm02 finished first: vm03 came in right after it, while vm00 and vm01 still ran
    assert backend.events[first + 1] == 'start vm03', backend.events
    assert backend.events.index('finish vm00') > backend.events.index('start vm09')
    assert starts == ['start %s' % g for g in GUESTS] and backend.peak == 3


def _snapshotted(backend, names=('s', 't', 'u')):
    polls, backend.polls, backend.slow_polls_was = backend.polls, 0, backend.slow_polls
    backend.slow_polls = 0
    for name in names:
        SnapshotEngine(backend, wait_policy=policy()).run(Request(
            state='present', guests=[GuestRef(name=g) for g in GUESTS], snapshot_name=name,
            spec=SnapshotSpec(name=name, marker=make_marker(None, 'test'))))
    backend.polls, backend.slow_polls = polls, backend.slow_polls_was
    backend.peak, backend.events, backend.in_flight = 0, [], []


def test_a_guests_removals_stay_one_after_another_and_keep_its_place(monkeypatch):
    from ansible_collections.savepoint.virt.plugins.module_utils import _locking
    renewals: List[int] = []
    real_renew = _locking.LeaseKeeper.renew
    monkeypatch.setattr(_locking.LeaseKeeper, 'renew', lambda keeper: (renewals.append(1), real_renew(keeper)))
    backend = SlowGuestBackend(polls=2, slow_polls=200)
    _snapshotted(backend)
    renewals.clear()
    # pruned, keep_last 0: three removals per guest, one after the other (remove_all would be one: the root)
    result = SnapshotEngine(backend, wait_policy=policy()).run(Request(
        state='pruned', guests=[GuestRef(name=g) for g in GUESTS], owner=DEFAULT_OWNER,
        retention=RetentionRule(keep_last=0), parallel=3))
    assert result['changed'] is True and all(not snaps for snaps in backend.snapshots.values())
    assert backend.peak == 3   # guests, not removals: a guest between two removals keeps its place
    slow_first = backend.events.index('finish vm00')
    # the fast guests did all three removals each while the slow guest did its first
    assert all(backend.events.count('finish %s' % g) == 3 for g in GUESTS[1:])
    assert all(max(i for i, e in enumerate(backend.events) if e == 'finish %s' % g) < slow_first
               for g in GUESTS[1:]), backend.events
    # the leases are renewed before each round, as often as before the window: once per snapshot depth
    assert len(renewals) == 3


def test_one_deadline_the_slow_guest_times_out_and_the_others_are_done():
    backend = SlowGuestBackend(polls=2, slow_polls=10 ** 9)
    with pytest.raises(PartialFailureError) as err:
        SnapshotEngine(backend, wait_policy=policy(timeout=400)).run(present(2, all_or_nothing=False))
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert 'did not finish within 400s' in results['vm00']['msg']
    # every other guest got its turn and its snapshot, none was cut off by the slow one
    assert all('not started' not in results[g]['msg'] and 'failed' not in results[g]['msg'] for g in GUESTS[1:])
    assert all([s.name for s in backend.snapshots[g]] == ['s'] for g in GUESTS[1:]), backend.snapshots
    assert backend.peak == 2


def test_wait_false_keeps_the_bound_with_a_slow_guest():
    backend = SlowGuestBackend(polls=2, slow_polls=10 ** 9)
    result = SnapshotEngine(backend, wait_policy=policy()).run(present(3, all_or_nothing=False, wait=False))
    actions = {r['guest']['name']: r['action'] for r in result['results']}
    assert backend.peak == 3
    # returned once nothing was left to start: the slow guest and the last ones (at most 3) still running
    started = sorted(g for g, a in actions.items() if a == 'started')
    assert 'vm00' in started and 'vm09' in started and len(started) <= 3, actions
    assert all(a == 'created' for g, a in actions.items() if g not in started)


def test_rollback_is_a_window_too():
    backend = SlowGuestBackend(polls=1, slow_polls=40, fail_create_on={'vm09'})
    with pytest.raises(PartialFailureError):
        SnapshotEngine(backend, wait_policy=policy()).run(present(3))
    assert all(not snaps for snaps in backend.snapshots.values())
    assert backend.peak <= 3


def test_default_wait_until_first_returns_when_one_is_complete_follow_ups_included():
    backend = CountingBackend(polls=1)
    guests = [backend.guests['vm00'], backend.guests['vm01']]
    fast = backend._op('create', guests[0], 'a', lambda: None)
    slow = backend._op('create', guests[1], 'b', lambda: None)
    slow.handle['remaining'] = 5
    follow: List[Operation] = []

    def power_on():
        follow.append(backend._op('power', guests[0], 'a', lambda: None))
        follow[0].handle['remaining'] = 3
        return follow[0]
    fast.follow_up = power_on
    backend.wait([fast, slow], policy(), until_first=True)
    # fast's own task finished at the first poll, but it is complete only with its follow-up
    assert fast.complete and follow and follow[0].done
    assert not slow.done
    backend.wait([slow], policy(), until_first=True)
    assert slow.complete


class GroupingBackend(CountingBackend):
    """Records what the engine hands to start_together; starts of guests in ``refuse`` raise at start."""

    starts_together = True

    def __init__(self, refuse=(), **kw) -> None:
        super().__init__(**kw)
        self.groups: List[int] = []
        self.refuse = set(refuse)

    def start_together(self, starts):
        self.groups.append(len(starts))
        return super().start_together(starts)

    def start_create(self, guest, spec):
        if guest.name in self.refuse:
            raise InvalidRequestError('guest %s refuses snapshots' % guest.name)
        return super().start_create(guest, spec)


def test_the_window_hands_its_free_places_to_the_backend_together():
    backend = GroupingBackend(polls=0)   # every operation is done when started: the window refills at once
    SnapshotEngine(backend, wait_policy=policy()).run(present(4))
    assert backend.groups == [4, 4, 2]   # 10 guests, 4 places
    assert backend.starts == ['create %s' % g for g in GUESTS]   # the request's order within and across groups
    # a guest's later removals go together too, each guest still one step at a time
    backend.groups.clear()
    SnapshotEngine(backend, wait_policy=policy()).run(Request(
        state='present', guests=[GuestRef(name=g) for g in GUESTS[:3]], snapshot_name='t', parallel=4,
        spec=SnapshotSpec(name='t', marker=make_marker(None, 'test'))))
    assert all(len(backend.snapshots[g]) == 2 for g in GUESTS[:3])
    backend.groups.clear()
    result = SnapshotEngine(backend, wait_policy=policy()).run(Request(   # two removals per guest
        state='pruned', guests=[GuestRef(name=g) for g in GUESTS[:3]], owner=DEFAULT_OWNER,
        retention=RetentionRule(keep_last=0), parallel=4))
    assert backend.groups == [3, 3] and result['changed'] is True
    assert not any(backend.snapshots[g] for g in GUESTS[:3])


def test_a_start_that_fails_in_a_group_fails_its_guest_only_and_is_rolled_back_like_alone():
    backend = GroupingBackend(polls=1, refuse={'vm02'})
    with pytest.raises(PartialFailureError) as err:
        SnapshotEngine(backend, wait_policy=policy()).run(present(4))
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert 'refuses snapshots' in results['vm02']['msg'] and results['vm02']['operations'] == []
    assert all(results[g]['rolled_back'] for g in GUESTS if g != 'vm02')
    assert not any(backend.snapshots[g] for g in GUESTS)
    assert backend.groups[0] == 4   # the failed start took its place in the first group


class SlowStartBackend(GroupingBackend):
    """Each create start takes 10 s of the test's clock (an OpenStack start makes several API calls)."""

    def __init__(self, clock, together: bool) -> None:
        super().__init__(polls=0)
        self.clock = clock
        self.starts_together = together

    def start_create(self, guest, spec):
        self.clock.now += 10
        return super().start_create(guest, spec)


@pytest.mark.parametrize('together', [False, True])
def test_no_start_is_made_after_the_deadline_not_even_inside_a_group(together):
    clock = Clock()
    backend = SlowStartBackend(clock, together)
    with pytest.raises(PartialFailureError) as err:
        SnapshotEngine(backend, wait_policy=policy(timeout=25, clock=clock)).run(present(4, all_or_nothing=False))
    started = [s.split()[1] for s in backend.starts]
    assert 1 <= len(started) < 4   # the deadline came inside the first group of 4
    assert backend.groups == ([4] if together else [1] * len(started))
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert all(results[g]['changed'] is True and 'error' not in results[g] for g in started)
    for name in GUESTS[len(started):]:
        assert 'was not started' in results[name]['msg'] and 'parallel=4' in results[name]['msg']

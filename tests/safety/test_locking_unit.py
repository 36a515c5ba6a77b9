"""_locking: the lease protocol on a hand-written in-memory store (pure logic; real providers in
test_concurrency.py)."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._locking import (
    LEASE_MARGIN_SECONDS, RENEW_SLACK_SECONDS, GuestBusyError, Lease, LeaseKeeper, LeaseUnavailableError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import Guest, to_iso

T0 = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


class Store:
    supports_leases = True
    lease_settle_seconds = 0.0

    def __init__(self):
        self.leases = {}
        self.writes = 0

    def read_lease(self, guest):
        return self.leases.get(guest.id)

    def write_lease(self, guest, text):
        self.writes += 1
        if text is None:
            self.leases.pop(guest.id, None)
        else:
            self.leases[guest.id] = text


class Clock:
    def __init__(self):
        self.t = 0.0

    def clock(self):
        return self.t

    def sleep(self, s):
        self.t += s

    def now(self):
        return T0 + datetime.timedelta(seconds=self.t)


def keeper(store, clock, timeout=10, check_mode=False):
    return LeaseKeeper(store, timeout, check_mode, clock=clock.clock, sleep=clock.sleep, now=clock.now)


GUESTS = [Guest(id='b', name='web2'), Guest(id='a', name='web1')]


def test_hold_acquires_all_and_releases():
    store, clock = Store(), Clock()
    k = keeper(store, clock)
    with k.hold(GUESTS):
        assert {json.loads(v)['run'] for v in store.leases.values()} == {k.run}
        assert set(store.leases) == {'a', 'b'}
    assert store.leases == {}


def test_second_run_waits_then_fails_naming_the_first():
    store, clock = Store(), Clock()
    first = keeper(store, clock)
    first.acquire(GUESTS)
    second = keeper(store, clock, timeout=10)
    with pytest.raises(GuestBusyError) as err:
        second.acquire(GUESTS[:1])
    assert first.run in err.value.msg and 'web2' in err.value.msg and 'nothing was changed' in err.value.msg
    assert clock.t >= 10
    assert {json.loads(v)['run'] for v in store.leases.values()} == {first.run}  # nothing of the second left


def test_partial_set_is_released_when_one_guest_is_busy():
    store, clock = Store(), Clock()
    first = keeper(store, clock)
    first.acquire([GUESTS[0]])            # holds b only
    second = keeper(store, clock, timeout=3)
    with pytest.raises(GuestBusyError):
        second.acquire(GUESTS)            # a is free, b busy: must not keep a
    assert 'a' not in store.leases


def test_stale_lease_taken_over_with_warning():
    store, clock = Store(), Clock()
    dead = keeper(store, clock, timeout=10)
    dead.acquire(GUESTS[:1])              # then the run "dies": never released
    clock.t += 10 + 60 + RENEW_SLACK_SECONDS + 1  # timeout + margin + slack
    heir = keeper(store, clock)
    heir.acquire(GUESTS[:1])
    assert json.loads(store.leases['b'])['run'] == heir.run
    assert any('stale lease' in w and dead.run in w for w in heir.warnings)


def test_waits_for_the_other_run_and_proceeds():
    store, clock = Store(), Clock()
    first = keeper(store, clock)
    first.acquire(GUESTS)
    second = keeper(store, clock, timeout=60)
    original_sleep = clock.sleep

    def sleep(s):  # the first run finishes while the second waits
        original_sleep(s)
        if clock.t > 5 and first.held:
            first.release()
    second.sleep = sleep
    second.acquire(GUESTS)
    assert {json.loads(v)['run'] for v in store.leases.values()} == {second.run}
    assert second.warnings == []


def test_check_mode_writes_nothing_but_warns():
    store, clock = Store(), Clock()
    first = keeper(store, clock)
    first.acquire(GUESTS[:1])
    writes = store.writes
    probe = keeper(store, clock, check_mode=True)
    with probe.hold(GUESTS):
        pass
    assert store.writes == writes
    assert any('in use by' in w for w in probe.warnings)


def test_unreadable_lease_is_taken_over_with_warning():
    store, clock = Store(), Clock()
    store.leases['a'] = '{not json'
    k = keeper(store, clock)
    k.acquire(GUESTS[1:])
    assert any('unreadable lease' in w for w in k.warnings)


def test_lost_race_is_detected_on_read_back():
    """Two writers of a plain register: the one whose lease is not there on read-back waits."""
    store, clock = Store(), Clock()
    other = keeper(store, clock)
    mine = keeper(store, clock, timeout=2)
    real_write = store.write_lease

    def racing_write(guest, text):
        real_write(guest, text)
        if text is not None and json.loads(text)['run'] == mine.run:
            real_write(guest, other._mine().encode())   # the other run writes right after us
    store.write_lease = racing_write
    store.lease_settle_seconds = 0.5
    with pytest.raises(GuestBusyError):
        mine.acquire(GUESTS[:1])
    assert json.loads(store.leases['b'])['run'] == other.run


def test_release_leaves_another_runs_lease():
    store, clock = Store(), Clock()
    k = keeper(store, clock)
    k.acquire(GUESTS[:1])
    store.leases['b'] = json.dumps({'run': 'x', 'who': 'y', 'acquired_at': to_iso(T0), 'expires_at': to_iso(T0)})
    k.release()
    assert 'b' in store.leases


def test_compact_lease_round_trips_within_the_limit():
    from ansible_collections.savepoint.virt.plugins.module_utils._locking import Lease
    lease = Lease(run='0123456789ab', who='user@host pid 1 job 7 state=present/x%y ' + 'w' * 80,
                  acquired_at=to_iso(T0), expires_at=to_iso(T0 + datetime.timedelta(seconds=75)))
    text = lease.encode(80)
    assert len(text) <= 80 and '/' not in text and '%' not in text
    back = Lease.decode(text)
    assert (back.run, back.acquired_at, back.expires_at) == (lease.run, lease.acquired_at, lease.expires_at)
    assert back.who.startswith('user@host pid 1 job 7')


@pytest.mark.parametrize('who', ['u@h pid 1', 'x' * 300, 'ü\\"' * 120, 'root@' + 'h' * 64 + ' pid 4194304 job 12345 state=reverted'])
def test_lease_text_is_shortened_to_a_store_limit_and_still_decodes(who):
    # Nova metadata values hold 255 characters: the human part gives way, the run id never does.
    lease = Lease(run='h' * 64 + ':4194304:0123abcd', who=who, acquired_at='2026-12-01T19:00:00Z',
                  expires_at='2026-12-01T19:11:00Z')
    text = lease.encode(255)
    assert len(text) <= 255
    back = Lease.decode(text)
    assert back.run == lease.run and back.expires_at == lease.expires_at
    # JSON with the whole who where it fits; else the compact line, who made safe and cut to fit
    from ansible_collections.savepoint.virt.plugins.module_utils._lease import _UNSAFE
    assert back.who == who or (not text.startswith('{') and who.translate(_UNSAFE).startswith(back.who))
    assert lease.encode() == json.dumps(asdict(lease), sort_keys=True)


def test_lease_text_that_cannot_fit_is_refused():
    lease = Lease(run='r' * 300, who='w', acquired_at='2026-12-01T19:00:00Z', expires_at='2026-12-01T19:11:00Z')
    with pytest.raises(ValueError, match='at most 255'):
        lease.encode(255)


class RefusingStore(Store):
    """A store that takes no lease on guest 'b' (Nova: a server in ERROR refuses metadata writes)."""

    def __init__(self, refuse=('b',)):
        super().__init__()
        self.refuse = set(refuse)

    def write_lease(self, guest, text):
        if guest.id in self.refuse and text is not None:
            raise LeaseUnavailableError('the server is ERROR, and Nova takes no metadata writes')
        super().write_lease(guest, text)


def test_a_guest_the_provider_takes_no_lease_on_is_acted_on_unlocked_with_a_warning():
    store, clock = RefusingStore(), Clock()
    k = keeper(store, clock)
    with k.hold(GUESTS):
        assert set(store.leases) == {'a'}
        assert [g.id for g in k.held] == ['a']
        k.renew()  # renewing skips it too
        store.refuse.add('a')  # guest a goes into such a state under the run
        clock.t += RENEW_SLACK_SECONDS  # due for renewal
        k.renew()
        assert k.held == []
    assert 'b' not in store.leases  # never written; a's lease, refused under the run, only expires
    assert any("'web2': this run holds no lease on it (the server is ERROR" in w for w in k.warnings), k.warnings
    assert any("'web1': this run holds no lease" in w for w in k.warnings), k.warnings
    assert clock.t < RENEW_SLACK_SECONDS + 10  # it did not wait for the refused lease to read back


def test_renew_rewrites_only_leases_that_would_start_a_round_with_less_than_timeout_plus_margin():
    store, clock = Store(), Clock()
    k = keeper(store, clock, timeout=10)
    with k.hold(GUESTS):
        writes = store.writes
        k.renew()  # just taken: each still has timeout + margin + slack
        assert store.writes == writes
        clock.t += RENEW_SLACK_SECONDS - 1
        k.renew()
        assert store.writes == writes
        for text in store.leases.values():  # a round starting now still has at least timeout + margin
            left = (datetime.datetime.fromisoformat(json.loads(text)['expires_at'].replace('Z', '+00:00'))
                    - clock.now()).total_seconds()
            assert left >= 10 + LEASE_MARGIN_SECONDS
        clock.t += 1
        k.renew()
        assert store.writes == writes + 2  # both due now, both pushed forward
        expires = {json.loads(text)['expires_at'] for text in store.leases.values()}
        assert expires == {to_iso(clock.now() + datetime.timedelta(seconds=10 + LEASE_MARGIN_SECONDS
                                                                   + RENEW_SLACK_SECONDS))}


class BulkStore(Store):
    """A plain store with the bulk hooks (as VMware's entries backend has them)."""

    def __init__(self):
        super().__init__()
        self.bulk = []

    def renew_leases(self, guests, text):
        self.bulk.append(('renew', sorted(g.id for g in guests)))
        for guest in guests:
            self.leases[guest.id] = text
        return {}

    def release_leases(self, guests):
        self.bulk.append(('release', sorted(g.id for g in guests)))
        for guest in guests:
            self.leases.pop(guest.id, None)
        return {'b': 'the server went away'}


def test_bulk_hooks_renew_and_release_all_at_once_and_report_what_was_not_released():
    store, clock = BulkStore(), Clock()
    k = keeper(store, clock)
    with k.hold(GUESTS):
        clock.t += RENEW_SLACK_SECONDS
        k.renew()
    assert store.bulk == [('renew', ['a', 'b']), ('release', ['a', 'b'])]
    assert store.leases == {}
    assert [w for w in k.warnings if 'could not release' in w] == [
        "guest 'web2': could not release the lease of this run (the server went away); it expires by itself"]


# -- an entries store (VMware's registry): one entry per run, written before the others are read ------------
class EntriesStore:
    """One run's session on a registry of entries (shared between sessions, as VMware's is): entry name (the
    lease text) -> the guest ids it covers. ``session()`` opens another run's session on the same registry."""

    supports_leases = True
    lease_entries = True
    lease_max_chars = 80

    def __init__(self, shared=None):
        self.shared = shared if shared is not None else {'entries': {}, 'claims': 0, 'drops': []}
        self.mine = None   # the name of the entry this session wrote
        self.before_read = None   # a hook run between a claim's write and its read (another run's step)

    def session(self):
        return EntriesStore(self.shared)

    @property
    def entries(self):
        return self.shared['entries']

    @property
    def claims(self):
        return self.shared['claims']

    @property
    def drops(self):
        return self.shared['drops']

    def claim_leases(self, guests, text):
        self.shared['claims'] += 1
        assert len(text) <= self.lease_max_chars
        assert self.mine is None, 'an entry claimed twice without a release'
        self.entries[text] = {g.id for g in guests}
        self.mine = text
        if self.before_read is not None:
            hook, self.before_read = self.before_read, None
            hook()
        return self.other_leases(guests)

    def other_leases(self, guests):
        found = {}
        for guest in guests:
            names = sorted(n for n, ids in self.entries.items() if guest.id in ids and n != self.mine)
            if names:
                found[guest.id] = names
        return found

    def drop_leases(self, names):
        self.drops.append(list(names))
        for name in names:
            self.entries.pop(name, None)

    def renew_leases(self, guests, text):
        if self.mine not in self.entries:
            return {g.id: GuestBusyError('the lease of this run is gone') for g in guests}
        self.entries[text] = self.entries.pop(self.mine)
        self.mine = text
        return {}

    def release_leases(self, guests):
        if self.mine is not None:
            self.entries.pop(self.mine, None)
            self.mine = None
        return {}


def test_entries_exclude_a_second_run_and_name_it_having_written_nothing_it_keeps():
    store, clock = EntriesStore(), Clock()
    first = keeper(store, clock)
    first.acquire(GUESTS)
    assert list(store.entries.values()) == [{'a', 'b'}] and store.claims == 1   # one entry for all guests
    second = keeper(store.session(), clock, timeout=5)
    with pytest.raises(GuestBusyError) as err:
        second.acquire([GUESTS[0], Guest(id='c', name='web3')])
    assert first.run in err.value.msg and 'nothing was changed' in err.value.msg
    assert second.held == [] and [n.split()[3] for n in store.entries] == [first.run]   # its own entry removed
    assert store.claims > 2   # it waited and tried again before giving up
    first.release()
    assert store.entries == {}


def test_entries_of_disjoint_sets_do_not_wait_for_each_other():
    store, clock = EntriesStore(), Clock()
    first, second = keeper(store, clock), keeper(store.session(), clock)
    first.acquire(GUESTS[:1])
    second.acquire(GUESTS[1:])
    assert clock.t == 0 and len(store.entries) == 2


def test_entries_two_runs_writing_at_once_never_both_hold():
    """Another run writes its entry between this run's write and read: this run sees it and backs off (its own
    entry removed while it waits), and holds once the other has released."""
    store, clock = EntriesStore(), Clock()
    other = store.session()
    first, second = keeper(store, clock, timeout=30), keeper(other, clock, timeout=30)
    store.before_read = lambda: other.claim_leases(GUESTS[1:], second._text())
    seen = []

    def sleep(seconds):
        seen.append(sorted(n.split()[3] for n in store.entries))
        clock.sleep(seconds)
        other.release_leases(GUESTS[1:])
    first.sleep = sleep
    first.acquire(GUESTS)
    assert seen == [[second.run]]   # while it waited only the other run's entry was there
    assert first.held and [n.split()[3] for n in store.entries] == [first.run]


def test_entries_the_run_that_reads_second_sees_the_first_and_backs_off():
    """The other run's whole acquire happens between this run's write and read: it reads after both writes,
    sees this run's entry and gives up having removed its own; this run then holds."""
    store, clock = EntriesStore(), Clock()
    first, second = keeper(store, clock, timeout=30), keeper(store.session(), clock, timeout=5)
    failed = []

    def second_runs():
        with pytest.raises(GuestBusyError) as err:
            second.acquire(GUESTS[1:])
        failed.append(err.value.msg)
    store.before_read = second_runs
    first.acquire(GUESTS)
    assert failed and first.run in failed[0]
    assert first.held and not second.held and [n.split()[3] for n in store.entries] == [first.run]


@pytest.mark.parametrize('left', ['expired', 'unreadable'])
def test_entries_a_stale_entry_is_removed_as_read_with_a_warning_naming_the_dead_run(left):
    store, clock = EntriesStore(), Clock()
    dead = keeper(store, clock, timeout=1)
    dead.acquire(GUESTS)
    dead.held = []  # SIGKILL: nothing released
    if left == 'unreadable':
        store.entries['garbage %s' % dead.run] = store.entries.pop(store.mine)
    else:
        clock.t += 1 + LEASE_MARGIN_SECONDS + RENEW_SLACK_SECONDS   # its lease expired
    heir = keeper(store.session(), clock, timeout=120)
    heir.acquire(GUESTS)
    assert [n.split()[3] for n in store.entries] == [heir.run]
    assert len(store.drops) == 1 and len(store.drops[0]) == 1   # the dead run's one entry, once
    assert any('stale lease' in w and 'web2' in w for w in heir.warnings), heir.warnings
    if left == 'expired':
        assert any(dead.run in w for w in heir.warnings), heir.warnings


def test_entries_a_live_entry_is_waited_for_until_its_run_releases_it():
    store, clock = EntriesStore(), Clock()
    first = keeper(store, clock)
    first.acquire(GUESTS)
    waits = []
    second = keeper(store.session(), clock, timeout=30)

    def sleep(seconds):
        waits.append(seconds)
        clock.sleep(seconds)
        if len(waits) == 3:
            first.release()
    second.sleep = sleep
    second.acquire(GUESTS)
    assert second.held and len(waits) == 3 and store.drops == []   # never removed the live one


def test_entries_renewal_of_an_entry_another_run_removed_fails():
    store, clock = EntriesStore(), Clock()
    k = keeper(store, clock)
    k.acquire(GUESTS)
    store.entries.clear()   # an heir found it expired and removed it
    clock.t += RENEW_SLACK_SECONDS
    with pytest.raises(GuestBusyError, match='gone'):
        k.renew()


def test_entries_check_mode_reads_once_and_writes_nothing():
    store, clock = EntriesStore(), Clock()
    holder = keeper(store, clock)
    holder.acquire(GUESTS[:1])
    calls = []
    real = store.other_leases
    store.other_leases = lambda guests: calls.append(len(guests)) or real(guests)
    look = keeper(store, clock, check_mode=True)   # (a session with no entry of its own)
    store.mine = None
    look.acquire(GUESTS)
    assert calls == [2] and store.claims == 1 and look.held == []
    assert [w for w in look.warnings if 'a real run would wait' in w and holder.run in w]


def test_entries_unsupported_means_unlocked_with_a_warning():
    from ansible_collections.savepoint.virt.plugins.module_utils._errors import UnsupportedError

    class NoFolders(EntriesStore):
        def claim_leases(self, guests, text):
            raise UnsupportedError('this vSphere server cannot create the lease folder')
    k = keeper(NoFolders(), Clock())
    k.acquire(GUESTS)
    assert k.held == [] and any('not kept out' in w for w in k.warnings)


class RecentStore(Store):
    """A store whose backend keeps its last read of each guest (OpenStack: the server read of a create's
    last poll carries the metadata the lease is in) and offers it to the release."""
    lease_settle_seconds = 1.0

    def __init__(self):
        super().__init__()
        self.reads = 0
        self.recent = {}
        self.asked = []

    def read_lease(self, guest):
        self.reads += 1
        return super().read_lease(guest)

    def recent_lease(self, guest, max_age):
        self.asked.append(max_age)
        return self.recent.get(guest.id, (False, None))


def test_release_removes_the_lease_a_fresh_read_of_the_backend_found_without_reading_again():
    store, clock = RecentStore(), Clock()
    k = keeper(store, clock)
    k.acquire(GUESTS[:1])
    store.recent['b'] = (True, store.leases['b'])
    reads = store.reads
    k.release()
    assert store.leases == {} and store.reads == reads
    assert store.asked == [0.5]  # half the settle time: the removal fits in the other half


def test_release_leaves_a_lease_a_fresh_read_found_to_be_another_runs():
    store, clock = RecentStore(), Clock()
    k = keeper(store, clock)
    k.acquire(GUESTS[:1])
    other = keeper(store, clock)
    store.recent['b'] = (True, other._text())
    store.leases['b'] = other._text()
    reads = store.reads
    k.release()
    assert json.loads(store.leases['b'])['run'] == other.run and store.reads == reads
    store.recent['b'] = (True, None)  # the fresh read found no lease at all: nothing is removed either
    store.leases['b'] = k._text()
    k.held = [GUESTS[0]]
    k.release()
    assert 'b' in store.leases, 'removed although the fresh read found no lease'


def test_release_reads_the_lease_when_the_backend_has_no_fresh_read():
    store, clock = RecentStore(), Clock()
    k = keeper(store, clock)
    k.acquire(GUESTS[:1])
    reads = store.reads
    k.release()
    assert store.leases == {} and store.reads == reads + 1

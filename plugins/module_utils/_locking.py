# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time per guest: a lease stored in the provider, next to the guest.

Two runs (two ansible-playbook processes, two AWX jobs) acting on the same
guest at once would each read the snapshot tree, each decide, and each write:
two snapshots of one name, a revert under a running create, half a set. The
engine therefore holds a lease on every guest of a request from before it
reads the trees until after it has read them back (look, decide, act).

- Where: the backend stores an opaque lease text (per guest for libvirt: an
  element of the domain's <metadata> in the collection's namespace; VMware: one
  entry per run naming all its guests, see "Races, entries" below and
  _backends/vmware/lease.py; OpenStack: a key of the server's metadata, whose
  255-character limit ``lease_max_chars`` states). A backend without storage (``supports_leases = False``) is not
  locked; the provider's own serialisation is then all there is.
- How long: ``timeout + LEASE_MARGIN_SECONDS + RENEW_SLACK_SECONDS`` from the
  last renewal. Before every round of writes each lease with less than
  ``timeout + LEASE_MARGIN_SECONDS`` left is renewed, so a round always starts
  with at least that much; one written less than RENEW_SLACK_SECONDS ago is
  not (a 1,000-guest run would otherwise rewrite 1,000 leases it took a moment
  before). A run that died holding it (SIGKILL, lost controller) blocks others
  until expiry; then the next run takes the lease over with a warning naming
  the dead run.
- Bulk: a backend may offer ``renew_leases(guests, text)`` and
  ``release_leases(guests)`` to renew or release many leases with one wait
  (VMware: one task per entry, all waited for together) instead of one
  round trip chain per guest. ``release`` removes leases one by one only
  where it read the lease and found it this run's, but calls
  ``release_leases`` without any read, so only a backend that removes exactly
  the lease object this run created may offer it: the entries backend
  (VMware) destroys this run's own entry, by the object it created, which no
  other run's lease can be.
- Waiting: a run that finds a live lease of another run waits for it (up to
  its own ``timeout``; a set across providers at most that in all, see
  LeaseKeepers), then fails naming the other run, having written nothing.
- Races, registers (libvirt, OpenStack): the store has no compare-and-set, so a
  run writes its lease, waits the settle time (``lease_settle_seconds``, else
  SETTLE_SECONDS) and reads it back; only a run that still finds its own lease
  holds it (of two writers the last one wins, the other sees it and waits).
  This excludes only while a run's read and write are closer together than the
  settle time: libvirt's are (one local call each); Nova's while its two API
  calls (a metadata read and write on a consistent register,
  _backends/openstack/lease.py) take less than that together.
- Races, entries (VMware, ``lease_entries = True``): a run writes ONE entry naming
  all its guests (``claim_leases``: the lease text and the guest list, in one
  place per datacenter), and only then reads every other run's entry. Of two
  runs whose sets overlap at least one sees the other (each writes before it
  reads, on a linearizable store), so no settle is needed; a run that sees a
  live entry of another removes its own, waits and starts again (like a lost
  register), one that sees an expired one removes exactly that entry
  (``drop_leases``) and warns. The cost is per run, not per guest.
- Guests are locked in id order, so two multi-guest runs cannot deadlock.
- Check mode writes no lease; it only warns when another run holds one.
"""

from __future__ import annotations

import contextlib
import datetime
import random
import time
from dataclasses import asdict
from typing import Any, Callable, Dict, Iterator, List, Optional

from ._errors import SavepointError, UnsupportedError
from ._lease import Lease, run_identity
from ._model import Guest, to_iso, utcnow

LEASE_MARGIN_SECONDS = 60.0
#: a lease written this recently is not renewed before a round; its expiry has this much on top
RENEW_SLACK_SECONDS = 20.0
SETTLE_SECONDS = 1.0
MAX_POLL_SECONDS = 5.0


class GuestBusyError(SavepointError):
    """Another run holds the lease of a guest of this request."""
    kind = 'guest_busy'


class LeaseUnavailableError(SavepointError):
    """The provider takes no lease on this guest in its present state (e.g. Nova refuses metadata writes
    on a server in ERROR). The run goes on without that guest's lease, with a warning: refusing it would
    also refuse deleting the snapshots of a broken guest, and what the provider refuses to store it will
    mostly refuse to snapshot or rebuild as well."""
    kind = 'provider_error'


class _Holding:
    """``hold``: the leases of ``guests`` for the body of a with statement, always released after it."""

    def acquire(self, guests: List[Guest]) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def hold(self, guests: List[Guest]) -> Iterator[Any]:
        try:
            self.acquire(guests)
            yield self
        finally:
            self.release()


class LeaseKeeper(_Holding):
    """Acquires, renews and releases the leases of one request's guests on one backend."""

    def __init__(self, backend: Any, timeout: float, check_mode: bool = False,
                 progress: Optional[Callable[[str], None]] = None, what: str = '',
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime.datetime] = utcnow, settle: float = SETTLE_SECONDS,
                 margin: float = LEASE_MARGIN_SECONDS) -> None:
        self.backend = backend
        self.timeout = float(timeout)
        self.check_mode = check_mode
        self.progress = progress
        self.clock, self.sleep, self.now = clock, sleep, now
        self.settle = settle
        self.margin = margin
        self.run, self.who = run_identity(what)
        self.held: List[Guest] = []
        #: guest id -> when (self.clock) this run last wrote the guest's lease
        self.written: Dict[str, float] = {}
        #: guests the provider takes no lease on in their present state (LeaseUnavailableError): id -> why
        self.unlocked: Dict[str, str] = {}
        self.warnings: List[str] = []
        self.acquired_at = ''
        #: check mode on an entries backend: the other runs' entries, read once for all guests
        self._others_read: Optional[Dict[str, List[str]]] = None
        #: a ``clock`` value after which waiting for another run's lease stops even if ``timeout`` has not
        #: passed (LeaseKeepers: one wait for a whole set across providers, not one per provider)
        self.wait_until: Optional[float] = None

    @property
    def enabled(self) -> bool:
        return bool(getattr(self.backend, 'supports_leases', False))

    def _mine(self) -> Lease:
        now = self.now()
        return Lease(run=self.run, who=self.who, acquired_at=self.acquired_at or to_iso(now),
                     expires_at=to_iso(now + datetime.timedelta(
                         seconds=self.timeout + self.margin + RENEW_SLACK_SECONDS)))

    def _text(self) -> str:
        """This run's lease as the backend stores it (compact where the store holds a short name only)."""
        return self._mine().encode(getattr(self.backend, 'lease_max_chars', None))

    def _wait_deadline(self) -> float:
        """When waiting for another run's lease gives up: ``timeout`` from now, or ``wait_until`` if sooner."""
        own = self.clock() + self.timeout
        return own if self.wait_until is None else min(own, self.wait_until)

    @property
    def _entries(self) -> bool:
        return bool(getattr(self.backend, 'lease_entries', False))

    def _check_mode_leases(self, guest: Guest, guests: List[Guest]) -> List[Lease]:
        """The leases another run may hold on ``guest`` (read only; entries read once for all guests)."""
        if not self._entries:
            lease = self._read(guest)[0]
            return [lease] if lease is not None else []
        if self._others_read is None:
            self._others_read = self.backend.other_leases(guests)
        leases = [self._decode(raw)[0] for raw in self._others_read.get(guest.id, [])]
        return [lease for lease in leases if lease is not None]

    def _unlock(self, guest: Guest, exc: SavepointError) -> None:
        self.unlocked[guest.id] = exc.msg
        warning = ("guest '%s': this run holds no lease on it (%s); another run could act on it at the same "
                   "time" % (guest.name, exc.msg))
        self.warnings.append(warning)
        self._say(warning)

    def _say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    @staticmethod
    def _decode(raw: Optional[str]) -> tuple:
        """(lease or None, problem text or None) of a lease text as the store holds it."""
        try:
            return Lease.decode(raw), None
        except (ValueError, TypeError, KeyError) as exc:
            return None, 'unreadable lease (%s)' % exc

    def _read(self, guest: Guest) -> tuple:
        """(lease or None, problem text or None) of a guest."""
        return self._decode(self.backend.read_lease(guest))

    def _release_read(self, guest: Guest) -> tuple:
        """The guest's lease as release() checks it before removing it: from a read the backend made
        moments ago (``recent_lease``: the last poll of an operation read the guest anyway) when there is
        one, else read now.

        As strong a check as a read of its own: the backend offers only a read that started after this
        run's last lease write and less than half the settle time ago. A lease of this run that such a
        read found can since have been replaced only by a run that wrote after that read; that run reads
        its lease back a whole settle time after its write, so after the removal that follows here (in
        the other half), and it finds its lease gone and tries again -- just as with a read made now,
        which is followed by the removal one call later. An older read, or none, and the lease is read.
        """
        recent = getattr(self.backend, 'recent_lease', None)
        if recent is not None:
            settle = float(getattr(self.backend, 'lease_settle_seconds', self.settle))
            fresh, text = recent(guest, settle / 2)
            if fresh:
                return self._decode(text)
        return self._read(guest)

    def acquire(self, guests: List[Guest]) -> None:
        if not self.enabled:
            return
        self.acquired_at = to_iso(self.now())
        ordered = sorted(guests, key=lambda g: g.id)
        if self.check_mode:
            for guest in ordered:
                for lease in self._check_mode_leases(guest, ordered):
                    if lease.run != self.run and not lease.expired(self.now()):
                        self.warnings.append("guest '%s' is in use by %s; a real run would wait for it"
                                             % (guest.name, lease.describe()))
                        break
            return
        try:
            if self._entries:
                self._acquire_all_entries(ordered)
            else:
                self._acquire_all(ordered)
            # What was read of the guests before (the lookup) may predate another run that held them.
            taken = getattr(self.backend, 'leases_taken', None)
            if taken is not None and self.held:
                taken(self.held)
        except UnsupportedError as exc:
            # e.g. an ESXi host without vCenter cannot create the lease folder: say so, do not block the run.
            self.release()
            self.warnings.append('no lease could be taken, so another run acting on the same guests at once is '
                                 'not kept out: %s' % exc.msg)
        except BaseException:
            self.release()
            raise

    def _acquire_all(self, guests: List[Guest]) -> None:
        """All leases or none: write every free one, settle once, read back; on a lost one release
        all, wait for that guest and start again (so two runs never hold half of each other's set)."""
        deadline = self._wait_deadline()
        settle = float(getattr(self.backend, 'lease_settle_seconds', self.settle))
        said = set()
        delay = 0.5
        while True:
            busy: Optional[tuple] = None
            taken = []
            for guest in guests:
                if guest.id in self.unlocked:
                    continue
                lease, problem = self._read(guest)
                if lease is None or lease.run == self.run or lease.expired(self.now()):
                    try:
                        self.backend.write_lease(guest, self._text())
                    except LeaseUnavailableError as exc:
                        self._unlock(guest, exc)
                        continue
                    self.held.append(guest)
                    self.written[guest.id] = self.clock()
                    if problem or (lease is not None and lease.run != self.run):
                        taken.append((guest, problem, lease))
                else:
                    busy = (guest, lease)
                    break
            if busy is None:
                if settle > 0:
                    self.sleep(settle)
                for guest in guests:
                    if guest.id in self.unlocked:
                        continue
                    check = self._read(guest)[0]
                    if check is None or check.run != self.run:
                        busy = (guest, check)
                        break
            if busy is None:
                self._took_over(taken)
                return
            delay = self._wait_for(busy, deadline, said, delay)

    def _took_over(self, taken: list) -> None:
        for guest, problem, lease in taken:
            why = problem or 'the lease of %s had expired: that run died or was cut off' % (
                lease.describe() if lease else 'another run')
            warning = "guest '%s': took over a stale lease: %s" % (guest.name, why)
            self.warnings.append(warning)
            self._say(warning)

    def _wait_for(self, busy: tuple, deadline: float, said: set, delay: float) -> float:
        """Release what is held, then wait a little for the busy guest (or fail at the deadline)."""
        self.release()
        guest, lease = busy
        left = deadline - self.clock()
        if lease is None and left > 0:  # lost it and the winner already let go (or is writing): try again shortly
            self.sleep(min(self.settle, left))
            return delay
        if left <= 0:
            if lease is None:
                raise GuestBusyError("guest '%s': the lease written by this run did not read back within %ds; "
                                     "nothing was changed" % (guest.name, self.timeout),
                                     details={'guest': guest.to_dict()})
            raise GuestBusyError(
                "guest '%s' is in use by another run: %s; waited %ds for it, nothing was changed. "
                "Retry when that run has finished (a run that died holding it is taken over once "
                "its lease expires)" % (guest.name, lease.describe(), self.timeout),
                details={'guest': guest.to_dict(), 'lease': asdict(lease)})
        if guest.id not in said:
            self._say("guest '%s' is in use by %s; waiting up to %ds" % (guest.name, lease.describe(), left))
            said.add(guest.id)
        # A little jitter, so that two runs that lost to each other do not retry in lock step.
        self.sleep(min(delay * (0.75 + 0.5 * random.random()), max(left, 0.0)))
        return min(delay * 2, MAX_POLL_SECONDS)

    def _acquire_all_entries(self, guests: List[Guest]) -> None:
        """All leases or none, with a backend that stores one entry per run (see the module docstring):
        write it, read the others; a live one of another run on any guest: remove ours, wait, again."""
        deadline = self._wait_deadline()
        said: set = set()
        delay = 0.5
        while True:
            others = self.backend.claim_leases(guests, self._text())
            self.held = list(guests)
            written = self.clock()
            for guest in guests:
                self.written[guest.id] = written
            busy: Optional[tuple] = None
            stale: set = set()          # the texts of the entries to remove
            taken: List[tuple] = []     # (guest, note, lease) of each guest of ours a stale entry covers
            for guest in guests:
                for raw in others.get(guest.id, []):
                    lease, note = self._decode(raw)
                    if lease is None and note is None:
                        note = 'a lease without details'
                    if lease is not None and lease.run == self.run:
                        continue   # this run's own, an earlier attempt's release could not remove it
                    if lease is not None and not lease.expired(self.now()):
                        busy = (guest, lease)
                        break
                    stale.add(raw)
                    taken.append((guest, note, lease))
                if busy is not None:
                    break
            if busy is None:
                if stale:
                    self.backend.drop_leases(sorted(stale))
                self._took_over(taken)
                return
            delay = self._wait_for(busy, deadline, said, delay)

    def renew(self) -> None:
        """Push the expiry of every held lease with less than ``timeout + margin`` left forward (before a
        new round of writes); one written less than RENEW_SLACK_SECONDS ago still has that much."""
        now = self.clock()
        due = [g for g in self.held if now - self.written.get(g.id, float('-inf')) >= RENEW_SLACK_SECONDS]
        if not due:
            return
        text = self._text()
        bulk = getattr(self.backend, 'renew_leases', None)
        if bulk is not None:
            errors = bulk(due, text)
        else:
            errors = {}
            for guest in due:
                try:
                    self.backend.write_lease(guest, text)
                except LeaseUnavailableError as exc:
                    errors[guest.id] = exc
        lost: Optional[BaseException] = None
        for guest in due:
            exc = errors.get(guest.id)
            if exc is None:
                self.written[guest.id] = now
            elif isinstance(exc, LeaseUnavailableError):  # the guest went into such a state under this run
                self.held.remove(guest)
                self._unlock(guest, exc)
            elif lost is None:
                lost = exc
        if lost is not None:
            raise lost

    def release(self) -> None:
        """Remove every lease this run holds; never raises (a left lease only expires)."""
        held, self.held = self.held, []
        bulk = getattr(self.backend, 'release_leases', None)
        if bulk is not None and held:
            try:
                problems = bulk(held)
            except Exception as exc:  # pylint: disable=broad-except  # the leases expire on their own
                problems = {g.id: str(exc) for g in held}
            for guest in held:
                if guest.id in problems:
                    self.warnings.append("guest '%s': could not release the lease of this run (%s); it expires "
                                         "by itself" % (guest.name, problems[guest.id]))
            return
        for guest in held:
            try:
                lease, _problem = self._release_read(guest)
                if lease is not None and lease.run == self.run:
                    self.backend.write_lease(guest, None)
            except Exception as exc:  # the provider went away: the lease expires on its own
                self.warnings.append("guest '%s': could not release the lease of this run (%s); it expires "
                                     "by itself" % (guest.name, exc))


class LeaseKeepers(_Holding):
    """The leases of a set across providers (a CompositeBackend): one LeaseKeeper per member backend,
    each with that provider's own protocol and storage, so a set keeps another run out of every guest as
    a task of one provider does.

    Taken in provider order, the order every run takes them in, so two runs cannot each hold a part the
    other waits for; all or none: when one member's leases cannot be taken, the ones taken are released.
    One run identity, one list of warnings and one wait: the members' keepers stop waiting for another
    run at the same deadline, ``timeout`` after the first began. Same interface as LeaseKeeper
    (``hold``, ``acquire``, ``renew``, ``release``, ``warnings``).
    """

    def __init__(self, backend: Any, timeout: float, check_mode: bool = False,
                 progress: Optional[Callable[[str], None]] = None, what: str = '',
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.backend = backend
        self.timeout = float(timeout)
        self.check_mode = check_mode
        self.progress = progress
        self.what = what
        self.clock, self.sleep = clock, sleep
        self.run, self.who = run_identity(what)
        self.keepers: List[LeaseKeeper] = []
        self.warnings: List[str] = []

    def acquire(self, guests: List[Guest]) -> None:
        wait_until = self.clock() + self.timeout
        try:
            for member, part in self.backend.lease_parts(guests):
                keeper = LeaseKeeper(member, self.timeout, self.check_mode, self.progress, self.what,
                                     clock=self.clock, sleep=self.sleep)
                keeper.run, keeper.who = self.run, self.who
                keeper.warnings = self.warnings
                keeper.wait_until = wait_until
                self.keepers.append(keeper)
                keeper.acquire(part)   # on failure it has released its own part
        except BaseException:
            self.release()
            raise

    def renew(self) -> None:
        """Every member's renewal; the first error is raised after all were tried."""
        first: Optional[BaseException] = None
        for keeper in self.keepers:
            try:
                keeper.renew()
            except Exception as exc:  # pylint: disable=broad-except  # raised below, after the others
                first = first or exc
        if first is not None:
            raise first

    def release(self) -> None:
        keepers, self.keepers = self.keepers, []
        for keeper in reversed(keepers):
            keeper.release()


def keeper_for(backend: Any, timeout: float, check_mode: bool = False,
               progress: Optional[Callable[[str], None]] = None, what: str = '') -> Any:
    """The lease keeper of one request: per member for a set across providers (``lease_parts``), else one."""
    if hasattr(backend, 'lease_parts'):
        return LeaseKeepers(backend, timeout, check_mode, progress, what)
    return LeaseKeeper(backend, timeout, check_mode, progress, what)

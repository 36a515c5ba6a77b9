# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract between the engine and a provider.

A backend takes plain values (its connection options as a dict) and raises
the engine's errors; it knows nothing of Ansible. A new provider is one
subclass of SnapshotBackend in ``_backends/`` plus one thin module.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence

from ._errors import AmbiguousGuestError, GuestNotFoundError, ProviderError, SavepointError, UnsupportedError
from ._model import Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec
from ._waiting import Operation, ProgressCallback, WaitPolicy, pending, wait_until


class SnapshotBackend:
    """Base class of every provider backend."""

    #: provider name as users write it in ``provider:``
    provider: ClassVar[str] = ''
    #: connection options: name -> {type, default, env: [VARS], no_log, choices, description}.
    #: Plain data so that the module layer can build an argument spec and docs can match it.
    connection_options: ClassVar[Dict[str, Dict[str, Any]]] = {}
    #: which GuestRef fields this provider understands
    guest_fields: ClassVar[tuple] = ('name', 'uuid')
    #: whether read_lease/write_lease store a per-guest lease (one run at a time per guest, _locking.py)
    supports_leases: ClassVar[bool] = False
    #: whether ``start_together`` sends its starts together: the engine then hands over every step a
    #: sliding window has room for at once (the deadline checked for each before any starts); otherwise
    #: it starts them one by one, the deadline checked before each (a start may take a while)
    starts_together: ClassVar[bool] = False
    #: provider-only guest options (module options such as ``moid``, ``server_id``, ``folder``)
    guest_options: ClassVar[tuple] = ()
    #: provider-only create options as argument-spec entries (``include_volumes``); they land in
    #: ``SnapshotSpec.options`` and apply to ``state=present`` only
    spec_options: ClassVar[Dict[str, Dict[str, Any]]] = {}

    def __init__(self, connection: Mapping[str, Any]) -> None:
        self.connection = dict(connection)

    # -- session -----------------------------------------------------------
    def connect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the session; must never raise."""

    def __enter__(self) -> 'SnapshotBackend':
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- guests ------------------------------------------------------------
    def find_guest(self, ref: GuestRef) -> Guest:
        raise NotImplementedError

    def find_guests(self, refs: List[GuestRef]) -> List[Guest]:
        """Several guests at once; providers with a bulk lookup override this."""
        return [self.find_guest(ref) for ref in refs]

    def list_guests(self) -> List[Guest]:
        raise NotImplementedError

    def refresh_guest(self, guest: Guest) -> Guest:
        """The same guest with its current power state, read from the provider (the engine reports
        the guest as it is after a revert). The default looks the guest up again by its id (or
        uuid); override it where the provider can re-read a guest more cheaply."""
        if 'id' in self.guest_fields:
            return self.find_guest(GuestRef(id=guest.id))
        if 'uuid' in self.guest_fields:
            return self.find_guest(GuestRef(uuid=guest.id))
        return guest

    # -- one run at a time per guest (_locking.py) ------------------------------
    def read_lease(self, guest: Guest) -> Optional[str]:
        """The lease text stored with the guest, None when there is none."""
        return None

    def write_lease(self, guest: Guest, text: Optional[str]) -> None:
        """Store ``text`` as the guest's lease (None removes it); the text is opaque to the backend."""

    # -- snapshots ---------------------------------------------------------
    def capabilities(self, guest: Guest) -> Capabilities:
        return Capabilities()

    def prepare_spec(self, guest: Guest, spec: SnapshotSpec, warnings: List[str]) -> SnapshotSpec:
        """Check a create request against this guest before anything is written.

        Raise for what cannot be honoured; return the spec to use (a softened
        ``preferred`` choice appends a warning saying what was done instead).
        """
        return spec

    def option_conflicts(self, existing: SnapshotRecord, spec: SnapshotSpec) -> List[str]:
        """How an existing snapshot differs from ``spec.options`` (the provider-only knobs).

        The engine compares the common fields itself; a provider with its own
        options says here why an existing snapshot is not the one asked for.
        """
        return []

    def prepare_revert(self, guest: Guest, snapshot: SnapshotRecord) -> None:
        """Check a revert to ``snapshot`` before anything is written (also in check mode and for every
        guest of a snapshot set before any is touched); raise for what cannot be done."""

    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        raise NotImplementedError

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        raise NotImplementedError

    def start_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Operation:
        """Revert and leave the guest in ``power_state`` (restore: as recorded in the snapshot)."""
        raise NotImplementedError

    def start_delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> Operation:
        raise NotImplementedError

    def start_rename(self, guest: Guest, snapshot: SnapshotRecord, new_name: Optional[str],
                     new_description: Optional[str]) -> Operation:
        """Give ``snapshot`` a new name (None: keep it) and/or description (None: keep it), keeping its
        ownership marker. Only called when ``capabilities(guest).rename`` is true."""
        raise UnsupportedError('%s cannot rename snapshots' % self.provider)

    def start_consolidate(self, guest: Guest, force: bool) -> Optional[Operation]:
        """After removals: consolidate the guest's disks when it needs it (``force``: whatever it says);
        None when there is nothing to do. Only called when ``capabilities(guest).consolidate`` is true."""
        raise UnsupportedError('%s has no disk consolidation' % self.provider)

    def start_together(self, starts: Sequence[Callable[[], Optional[Operation]]]) -> List[Any]:
        """Run the ``starts`` (each one of the ``start_*`` calls above): per start, its Operation (or None),
        or the exception it raised, in their order. The engine hands over every guest a sliding window
        starts at once (when ``starts_together``); a backend whose provider takes several requests at a
        time (vSphere) sends them together instead of one round trip after the other. The default runs
        them one by one."""
        outcomes: List[Any] = []
        for start in starts:
            try:
                outcomes.append(start())
            except Exception as exc:  # pylint: disable=broad-except  # handed to the engine, per guest
                outcomes.append(exc)
        return outcomes

    # -- waiting -----------------------------------------------------------
    def poll(self, operation: Operation) -> None:
        """Update ``operation`` (done/error/result) from the provider; asynchronous providers override."""
        if not operation.done:
            raise ProviderError('%s has no way to poll an unfinished %s' % (self.provider, operation.action))

    def wait(self, operations: List[Operation], policy: WaitPolicy,
             progress: Optional[ProgressCallback] = None, until_first: bool = False) -> None:
        """Wait for all operations together (and their follow-ups) within one deadline.

        ``until_first``: return as soon as one of ``operations`` is complete (follow-ups included),
        leaving the others running; the engine then starts the next guest in its place (a sliding
        window, _window.py) and calls ``wait`` again with what is still running (an operation's
        finished steps are not waited for again).

        Backends with a push mechanism (vSphere's property collector) override
        this; the default polls every unfinished operation with backoff.
        """
        deadline = policy.clock() + policy.timeout
        # where each unfinished operation is now: its last step (earlier ones finished in an earlier call)
        waiting = [op.chain()[-1] for op in operations if not op.complete]

        def poll_all() -> bool:
            for op in pending(waiting):
                try:
                    self.poll(op)
                except SavepointError as exc:
                    op.finish(error=exc)
            if until_first:
                return any(op.done for op in waiting)
            return not pending(waiting)

        while waiting:
            if pending(waiting):
                names = ', '.join(sorted({'%s %s' % (op.action, op.guest.name) for op in pending(waiting)}))
                remaining = dataclasses.replace(policy, timeout=max(0.0, deadline - policy.clock()))
                wait_until(poll_all, remaining, names, progress)
            waiting = pending(waiting) + self.run_follow_ups(waiting)
            if until_first and any(op.complete for op in operations):
                return

    @staticmethod
    def run_follow_ups(operations: List[Operation]) -> List[Operation]:
        """Start the follow-up step of each successful operation; return the new operations."""
        started: List[Operation] = []
        for op in operations:
            if op.done and op.error is None and op.follow_up is not None:
                step, op.follow_up = op.follow_up, None
                try:
                    nxt = step()
                except SavepointError as exc:
                    op.error = exc
                    continue
                if nxt is not None:
                    op.next_step = nxt
                    started.append(nxt)
        return started


def pick_one(candidates: List[Guest], ref: GuestRef, provider: str) -> Guest:
    """The single guest a lookup found, or a clear error naming the candidates."""
    if not candidates:
        raise GuestNotFoundError('%s guest %s not found' % (provider, ref.describe()))
    if len(candidates) > 1:
        listed = ', '.join('%s (id %s)' % (g.name, g.id) for g in candidates)
        raise AmbiguousGuestError(
            '%s guest %s is ambiguous: %d guests match: %s; name it by a unique id instead'
            % (provider, ref.describe(), len(candidates), listed),
            details={'candidates': [g.to_dict() for g in candidates]})
    return candidates[0]

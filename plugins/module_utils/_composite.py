# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One snapshot set across providers: a backend that routes every call to a real one.

The engine runs a request against one backend. For a task whose ``guests``
entries name several providers (libvirt + VMware + OpenStack), the module layer
builds a ``CompositeBackend`` class for exactly those providers
(``composite_for``); the engine then does what it does for one provider --
lease, look, decide, act, roll a failed set back, read back, report per guest --
and this class sends each call to the backend of the guest's provider:

- guests: ``find_guests`` groups the refs by ``GuestRef.provider`` and tags every
  Guest it returns with ``Guest.provider``; every later call is routed by that tag;
- connections: a member backend is connected on first use, so only the
  providers the request names are contacted, and every one is closed at the end;
- waiting: ``wait`` groups the operations per member backend and waits for each
  group under ONE overall deadline (the task's timeout), one after the other:
  every write was already started, so the total is about the slowest provider's,
  and each provider keeps its own waiter (vSphere's property collector,
  OpenStack's polling). A group that fails does not stop the others being waited for;
- leases: each member leases its own guests with its own protocol and storage (libvirt's domain
  metadata, VMware's per-run registry entry, OpenStack's server metadata), one lease keeper per
  member, taken in provider order, all or none (``lease_parts``, _locking.LeaseKeepers); a member
  without lease storage relies on its provider's own serialisation, as it does alone.

Like every backend this knows nothing of Ansible: plain values in, _errors out.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type

from ._backend import SnapshotBackend
from ._errors import InvalidRequestError
from ._model import Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec
from ._waiting import Operation, ProgressCallback, WaitPolicy

#: how a set across providers names its providers in the result's ``provider``
JOIN = '+'


class CompositeBackend(SnapshotBackend):
    """Routes each call by the guest's provider to one member backend (see the module docstring)."""

    #: the member backend classes, set by composite_for()
    members: ClassVar[Tuple[Type[SnapshotBackend], ...]] = ()

    def __init__(self, connection: Mapping[str, Any]) -> None:
        super().__init__(connection)
        self._classes: Dict[str, Type[SnapshotBackend]] = {m.provider: m for m in self.members}
        self._open: Dict[str, SnapshotBackend] = {}
        self._record_owner: Dict[int, str] = {}   # id(SnapshotRecord) -> provider, for option_conflicts
        self._op_owner: Dict[int, str] = {}       # id(Operation) -> provider, for poll/wait

    # -- members -----------------------------------------------------------------------
    def member(self, provider: str) -> SnapshotBackend:
        """The connected backend of ``provider``; connected on first use."""
        backend = self._open.get(provider)
        if backend is not None:
            return backend
        cls = self._classes.get(provider)
        if cls is None:
            raise InvalidRequestError("provider '%s' is not part of this task (it names %s)"
                                      % (provider, ', '.join(sorted(self._classes))))
        backend = cls({name: self.connection.get(name) for name in cls.connection_options})
        backend.connect()
        self._open[provider] = backend
        return backend

    def _of(self, guest: Guest) -> SnapshotBackend:
        if not guest.provider:
            raise InvalidRequestError("internal error: guest '%s' carries no provider" % guest.name)
        return self.member(guest.provider)

    @staticmethod
    def _tag(guest: Guest, provider: str) -> Guest:
        guest.provider = provider
        return guest

    # -- session -----------------------------------------------------------------------
    def connect(self) -> None:
        """Nothing yet: each member connects when the request first needs it."""

    def close(self) -> None:
        for backend in self._open.values():
            try:
                backend.close()
            except Exception:  # pylint: disable=broad-except  # close() must never raise
                pass
        self._open = {}

    # -- guests ------------------------------------------------------------------------
    def find_guests(self, refs: List[GuestRef]) -> List[Guest]:
        """Each provider's guests in one call of its own (its bulk lookup), in the order named."""
        by_provider: Dict[str, List[int]] = {}
        for index, ref in enumerate(refs):
            if not ref.provider:
                raise InvalidRequestError('guest %s: a task across providers needs a provider in every guests entry'
                                          % ref.describe())
            by_provider.setdefault(ref.provider, []).append(index)
        found: List[Optional[Guest]] = [None] * len(refs)
        for provider in sorted(by_provider):
            indexes = by_provider[provider]
            backend = self.member(provider)
            guests = backend.find_guests([dataclasses.replace(refs[i], provider=None) for i in indexes])
            for index, guest in zip(indexes, guests):
                found[index] = self._tag(guest, provider)
        return [g for g in found if g is not None]

    def find_guest(self, ref: GuestRef) -> Guest:
        return self.find_guests([ref])[0]

    def list_guests(self) -> List[Guest]:
        guests: List[Guest] = []
        for provider in sorted(self._classes):
            guests.extend(self._tag(g, provider) for g in self.member(provider).list_guests())
        return guests

    def refresh_guest(self, guest: Guest) -> Guest:
        return self._tag(self._of(guest).refresh_guest(guest), guest.provider)

    # -- leases ------------------------------------------------------------------------
    def lease_parts(self, guests: List[Guest]) -> List[Tuple[SnapshotBackend, List[Guest]]]:
        """The guests of each member backend, in provider order: the engine gives each member a lease keeper
        of its own (_locking.LeaseKeepers), so every guest is leased with its provider's own protocol and
        storage, as in a task of that provider alone. The composite itself stores none."""
        by_provider: Dict[str, List[Guest]] = {}
        for guest in guests:
            self._of(guest)   # a guest without a provider is refused here, before any lease is written
            by_provider.setdefault(guest.provider or '', []).append(guest)
        return [(self.member(provider), by_provider[provider]) for provider in sorted(by_provider)]

    # -- snapshots -----------------------------------------------------------------------
    def capabilities(self, guest: Guest) -> Capabilities:
        return self._of(guest).capabilities(guest)

    def _own_spec(self, guest: Guest, spec: SnapshotSpec) -> SnapshotSpec:
        """The spec with only the create options this guest's provider has (include_volumes: OpenStack)."""
        mine = self._classes[guest.provider].spec_options
        return dataclasses.replace(spec, options={k: v for k, v in (spec.options or {}).items() if k in mine})

    def prepare_spec(self, guest: Guest, spec: SnapshotSpec, warnings: List[str]) -> SnapshotSpec:
        return self._of(guest).prepare_spec(guest, self._own_spec(guest, spec), warnings)

    def option_conflicts(self, existing: SnapshotRecord, spec: SnapshotSpec) -> List[str]:
        provider = self._record_owner.get(id(existing))
        if provider is None:
            return []
        mine = self._classes[provider].spec_options
        own = dataclasses.replace(spec, options={k: v for k, v in (spec.options or {}).items() if k in mine})
        return self.member(provider).option_conflicts(existing, own)

    def prepare_revert(self, guest: Guest, snapshot: SnapshotRecord) -> None:
        self._of(guest).prepare_revert(guest, snapshot)

    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        records = self._of(guest).list_snapshots(guest)
        for record in records:
            self._record_owner[id(record)] = guest.provider
        return records

    def _started(self, guest: Guest, op: Operation) -> Operation:
        if op is not None:
            self._op_owner[id(op)] = guest.provider
        return op

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        return self._started(guest, self._of(guest).start_create(guest, spec))

    def start_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Operation:
        return self._started(guest, self._of(guest).start_revert(guest, snapshot, power_state))

    def start_delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> Operation:
        return self._started(guest, self._of(guest).start_delete(guest, snapshot, remove_children))

    def start_rename(self, guest: Guest, snapshot: SnapshotRecord, new_name: Optional[str],
                     new_description: Optional[str]) -> Operation:
        return self._started(guest, self._of(guest).start_rename(guest, snapshot, new_name, new_description))

    def start_consolidate(self, guest: Guest, force: bool) -> Optional[Operation]:
        op = self._of(guest).start_consolidate(guest, force)
        return self._started(guest, op) if op is not None else None

    # -- waiting ---------------------------------------------------------------------------
    def _provider_of(self, op: Operation) -> str:
        return self._op_owner.get(id(op)) or getattr(op.guest, 'provider', '') or ''

    def poll(self, operation: Operation) -> None:
        self.member(self._provider_of(operation)).poll(operation)

    def wait(self, operations: List[Operation], policy: WaitPolicy,
             progress: Optional[ProgressCallback] = None, until_first: bool = False) -> None:
        """Each provider's operations with its own waiter, all under one deadline.

        A provider whose wait fails or times out does not keep the others from being waited
        for; the first such error is raised at the end, after every group was waited for, so the
        engine marks only the steps still unfinished (those of that provider).

        ``until_first``: one provider after the other, each until its first operation is complete;
        the wait ends with the first provider that had one (no waiter listens to another provider's
        tasks, so a slow provider earlier in the order can delay a faster one's next guest).
        """
        deadline = policy.clock() + policy.timeout
        groups: Dict[str, List[Operation]] = {}
        for op in operations:
            if not op.complete:
                groups.setdefault(self._provider_of(op), []).append(op)
        first: Optional[BaseException] = None
        for provider in sorted(groups):
            remaining = dataclasses.replace(policy, timeout=max(0.0, deadline - policy.clock()))
            try:
                # after a provider's error, the rest are waited for to the end (as without until_first), so
                # the engine marks only the failed provider's steps, never another's that still run
                self.member(provider).wait(groups[provider], remaining, progress, until_first and first is None)
            except Exception as exc:  # pylint: disable=broad-except  # the other providers are still waited for
                first = first or exc
            if until_first and first is None and any(op.complete for op in groups[provider]):
                return
        if first is not None:
            raise first


def composite_for(backends: Sequence[Type[SnapshotBackend]]) -> Type[CompositeBackend]:
    """A CompositeBackend class for these providers: their options united (the module layer builds
    the argument spec and the connection dict from them), ``provider`` their names joined by '+'."""
    members = tuple(sorted(backends, key=lambda b: b.provider))
    connection: Dict[str, Dict[str, Any]] = {}
    spec: Dict[str, Dict[str, Any]] = {}
    fields: List[str] = []
    options: List[str] = []
    for member in members:
        connection.update(member.connection_options)
        spec.update(member.spec_options)
        fields.extend(f for f in member.guest_fields if f not in fields)
        options.extend(o for o in member.guest_options if o not in options)
    return type('CompositeBackend', (CompositeBackend,), {
        'members': members,
        'provider': JOIN.join(m.provider for m in members),
        'connection_options': connection,
        'spec_options': spec,
        'guest_fields': tuple(fields),
        'guest_options': tuple(options),
    })

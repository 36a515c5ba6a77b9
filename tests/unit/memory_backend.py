"""A hand-written in-memory backend, only for unit tests of the engine's pure logic.

It records every write so tests can prove that check mode and failed
validation never reach the provider, and it can be told to fail or to stay
"running" for a number of polls.
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Optional

from ansible_collections.savepoint.virt.plugins.module_utils._backend import SnapshotBackend, pick_one
from ansible_collections.savepoint.virt.plugins.module_utils._errors import ProviderError
from ansible_collections.savepoint.virt.plugins.module_utils._model import (
    Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec, to_iso, utcnow,
)
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation


class MemoryBackend(SnapshotBackend):
    provider = 'memory'
    guest_fields = ('name', 'uuid', 'id')

    def __init__(self, guests: Optional[Dict[str, str]] = None, polls: int = 0,
                 fail_create_on: Optional[set] = None, capabilities: Optional[Capabilities] = None) -> None:
        super().__init__({})
        self.guests = {name: Guest(id='id-%s' % name, name=name, power_state=state)
                       for name, state in (guests or {'vm1': 'running'}).items()}
        self.snapshots: Dict[str, List[SnapshotRecord]] = {name: [] for name in self.guests}
        self.writes: List[tuple] = []
        self.polls = polls
        self.fail_create_on = fail_create_on or set()
        self.caps = capabilities or Capabilities(memory=True, quiesce=True, external=True, revert_external=True)
        self.ids = itertools.count(1)

    def connect(self) -> None:
        pass

    def find_guest(self, ref: GuestRef) -> Guest:
        found = [g for g in self.guests.values()
                 if ref.name == g.name or (ref.id and ref.id == g.id) or (ref.uuid and ref.uuid == g.id)]
        return pick_one(found, ref, self.provider)

    def list_guests(self) -> List[Guest]:
        return list(self.guests.values())

    def capabilities(self, guest: Guest) -> Capabilities:
        return self.caps

    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        snaps = self.snapshots[guest.name]
        for snap in snaps:
            snap.children = [s.name for s in snaps if s.parent_id == snap.id]
        return [SnapshotRecord(**{**snap.__dict__, 'children': list(snap.children)}) for snap in snaps]

    def _op(self, action: str, guest: Guest, name: str, apply) -> Operation:
        op = Operation(action=action, guest=guest, snapshot_name=name, id='task-%d' % next(self.ids))
        op.handle = {'remaining': self.polls, 'apply': apply}
        if self.polls == 0:
            self._complete(op)
        return op

    def _complete(self, op: Operation) -> None:
        try:
            op.handle['apply']()
        except ProviderError as exc:
            op.finish(error=exc)
            return
        op.blocked_seconds = 0.01 if op.action == 'create' else None
        op.finish()

    def poll(self, operation: Operation) -> None:
        operation.handle['remaining'] -= 1
        if operation.handle['remaining'] <= 0:
            self._complete(operation)

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        self.writes.append(('create', guest.name, spec.name))

        def apply():
            if guest.name in self.fail_create_on:
                raise ProviderError('disk full on %s' % guest.name, provider_message='ENOSPC')
            snaps = self.snapshots[guest.name]
            current = next((s for s in snaps if s.current), None)
            for snap in snaps:
                snap.current = False
            record = SnapshotRecord(name=spec.name, id='snap-%d' % next(self.ids), current=True,
                                    parent=current.name if current else None,
                                    parent_id=current.id if current else None,
                                    created_at=to_iso(utcnow()), memory=bool(spec.memory), kind=spec.kind,
                                    quiesced=spec.quiesce != 'never', description=spec.description,
                                    power_state=guest.power_state)
            record.apply_marker(spec.marker)
            snaps.append(record)
        return self._op('create', guest, spec.name, apply)

    def start_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Operation:
        self.writes.append(('revert', guest.name, snapshot.name, power_state))

        def apply():
            for snap in self.snapshots[guest.name]:
                snap.current = snap.id == snapshot.id
        return self._op('revert', guest, snapshot.name, apply)

    def start_delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> Operation:
        self.writes.append(('delete', guest.name, snapshot.name, remove_children))

        def apply():
            snaps = self.snapshots[guest.name]
            gone = {snapshot.id}
            if remove_children:
                changed = True
                while changed:
                    new = {s.id for s in snaps if s.parent_id in gone} - gone
                    changed = bool(new)
                    gone |= new
            for snap in snaps:
                if snap.parent_id in gone and snap.id not in gone:
                    snap.parent_id, snap.parent = snapshot.parent_id, snapshot.parent
            self.snapshots[guest.name] = [s for s in snaps if s.id not in gone]
        return self._op('delete', guest, snapshot.name, apply)

    def start_rename(self, guest: Guest, snapshot: SnapshotRecord, new_name: Optional[str],
                     new_description: Optional[str]) -> Operation:
        self.writes.append(('rename', guest.name, snapshot.name, new_name, new_description))

        def apply():
            for snap in self.snapshots[guest.name]:
                if snap.id == snapshot.id:
                    snap.name = new_name or snap.name
                    if new_description is not None:
                        snap.description = new_description
        return self._op('rename', guest, snapshot.name, apply)

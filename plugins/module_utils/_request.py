# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the engine is asked (``Request``, checked by ``validate`` before anything is read) and what it
finds and decides per guest (``GuestPlan``), with the pure helpers the plan/act phases share.

Kept apart from ``_engine.SnapshotEngine`` (look, decide, act) so that each file holds one job;
``_engine`` re-exports ``Request`` for its callers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional

from ._errors import AmbiguousSnapshotError, InvalidRequestError, ProviderError, SavepointError
from ._model import (
    POWER_AFTER_REVERT, Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec, normalise_description,
)
from ._options import STATES, check_parallel
from ._retention import RetentionRule
from ._waiting import Operation


def unexpected_error(exc: BaseException, doing: str) -> ProviderError:
    """An exception that is not one of the engine's errors, as one (its text kept, no traceback)."""
    return ProviderError('unexpected error while %s: %s: %s' % (doing, type(exc).__name__, str(exc)[:300]),
                         provider_message=str(exc)[:300], details={'exception': type(exc).__name__})


def marker_warnings(guest: Guest, snapshots: List[SnapshotRecord]) -> List[str]:
    return ["guest '%s': snapshot '%s' has an %s; it is treated as not owned (never pruned)"
            % (guest.name, s.name, s.marker_problem) for s in snapshots if s.marker_problem]


@dataclass
class Request:
    state: str
    guests: List[GuestRef]
    snapshot_name: Optional[str] = None
    spec: Optional[SnapshotSpec] = None
    power_state: str = 'restore'
    remove_children: bool = False
    remove_all: bool = False
    all_or_nothing: bool = True
    wait: bool = True
    retention: Optional[RetentionRule] = None
    owner: Optional[str] = None
    timeout: float = 600.0
    snapshot_id: Optional[str] = None         # select by the provider's snapshot id instead of (or with) the name
    new_name: Optional[str] = None            # state=present: rename the selected snapshot ...
    new_description: Optional[str] = None     # ... and/or give it this description
    consolidate: str = 'auto'                 # disks after removals: auto | true | false (_consolidate)
    parallel: Optional[int] = None            # guests worked on at once; None: the provider's default

    def __post_init__(self) -> None:
        # snapshot_name is the one source of the name: the spec (what a new snapshot is to be) follows it
        if self.spec is not None and self.spec.name != (self.snapshot_name or ''):
            self.spec = dataclasses.replace(self.spec, name=self.snapshot_name or '')

    @property
    def renames(self) -> bool:
        return self.state == 'present' and (bool(self.new_name) or self.new_description is not None)

    def validate(self) -> None:
        if self.state not in STATES:
            raise InvalidRequestError('state must be one of %s' % ', '.join(STATES))
        check_parallel(self.parallel)
        if not self.guests:
            raise InvalidRequestError('name at least one guest (name, uuid, id or guests)')
        for ref in self.guests:
            ref.validate()
        if self.remove_all and (self.state != 'absent' or self.snapshot_name):
            raise InvalidRequestError('remove_all goes with state=absent and no snapshot_name')
        if self.state in ('present', 'absent', 'reverted') and not (
                self.snapshot_name or self.snapshot_id or self.remove_all):
            raise InvalidRequestError('state=%s needs snapshot_name%s' % (
                self.state, '' if self.state == 'present' and not self.renames else ' or snapshot_id'))
        if self.snapshot_id and self.remove_all:
            raise InvalidRequestError('remove_all removes every snapshot: it takes no snapshot_id')
        if self.state == 'present' and self.snapshot_id and not self.renames:
            raise InvalidRequestError('snapshot_id with state=present only selects the snapshot to rename: '
                                      'set new_snapshot_name or new_description, or use snapshot_name to create')
        if self.state == 'present' and not self.renames:
            if self.spec is None:
                raise InvalidRequestError('state=present needs a snapshot specification')
            self.spec.validate()
        if self.state == 'pruned' and self.retention is None:
            raise InvalidRequestError('state=pruned needs a retention rule')
        if self.power_state not in POWER_AFTER_REVERT:
            raise InvalidRequestError('power_state must be one of %s' % ', '.join(POWER_AFTER_REVERT))
        if not self.wait and (self.state == 'pruned' or self.remove_all):
            raise InvalidRequestError('wait: false cannot be used with %s: snapshots of one guest are removed one '
                                      'after the other' % ('state=pruned' if self.state == 'pruned' else 'remove_all'))
        if not self.wait and len(self.guests) > 1 and self.all_or_nothing and self.state == 'present':
            raise InvalidRequestError('wait: false cannot roll back a snapshot set; '
                                      'use wait: true or all_or_nothing: false')


@dataclass
class GuestPlan:
    """What the engine found and decided for one guest."""

    guest: Guest
    snapshots: List[SnapshotRecord]
    capabilities: Capabilities
    action: str = 'none'                     # create | delete | revert | rename | none
    targets: List[SnapshotRecord] = field(default_factory=list)
    spec: Optional[SnapshotSpec] = None
    existing: Optional[SnapshotRecord] = None
    reasons: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    operations: List[Operation] = field(default_factory=list)
    outcome: str = ''
    error: Optional[SavepointError] = None
    rolled_back: bool = False
    rollback: str = ''
    after: Optional[List[SnapshotRecord]] = None
    created: Optional[SnapshotRecord] = None


def find_by_name(snapshots: List[SnapshotRecord], name: str, guest: Guest) -> Optional[SnapshotRecord]:
    matches = [s for s in snapshots if s.name == name]
    if len(matches) > 1:
        raise AmbiguousSnapshotError(
            "guest '%s' has %d snapshots named '%s' (ids %s); this collection will not guess which one"
            % (guest.name, len(matches), name, ', '.join(s.id for s in matches)),
            details={'snapshots': [s.to_dict() for s in matches]})
    return matches[0] if matches else None


def conflicts(existing: SnapshotRecord, spec: SnapshotSpec) -> List[str]:
    """How an existing snapshot differs from what was asked (empty: it is the same one)."""
    found = []
    if spec.memory is not None and existing.memory != spec.memory:
        found.append('memory is %s, asked %s' % (existing.memory, spec.memory))
    if existing.kind != spec.kind:
        found.append("kind is '%s', asked '%s'" % (existing.kind, spec.kind))
    asked = normalise_description(spec.description)
    if asked and normalise_description(existing.description) != asked:
        found.append('description is %r, asked %r' % (existing.description, asked))
    if spec.quiesce == 'required' and existing.quiesced is False:
        found.append('it was taken without quiescing, asked quiesce: required')
    return found

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider-neutral data model: what a guest, a snapshot request and a
snapshot record are, whatever the hypervisor or cloud behind them."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field, asdict
from typing import Any, Dict, List, Optional

from ._errors import InvalidRequestError

QUIESCE_POLICIES = ('required', 'preferred', 'never')
SNAPSHOT_KINDS = ('internal', 'external')
POWER_AFTER_REVERT = ('restore', 'on', 'off')
# Guest power states as the engine reports them, whatever the provider calls them.
POWER_STATES = ('running', 'paused', 'off', 'suspended', 'unknown')

_DURATION_RE = re.compile(r'(\d+)\s*([wdhms])', re.IGNORECASE)
_DURATION_UNITS = {'w': 604800, 'd': 86400, 'h': 3600, 'm': 60, 's': 1}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def to_iso(value: Optional[datetime.datetime]) -> Optional[str]:
    """ISO 8601 in UTC with a Z, second precision: the one time format of every result."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


def from_iso(text: Optional[str]) -> Optional[datetime.datetime]:
    if not text:
        return None
    value = text.strip()
    if value.endswith('Z'):
        value = value[:-1] + '+00:00'
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def parse_duration(text: Any) -> datetime.timedelta:
    """``7d``, ``12h``, ``1w2d``, ``90m``, ``3600`` (seconds) -> timedelta."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = int(text)
    else:
        raw = str(text).strip()
        if raw.isdigit():
            seconds = int(raw)
        else:
            compact = raw.replace(' ', '')
            parts = _DURATION_RE.findall(compact)
            if not parts or ''.join(n + u for n, u in parts).lower() != compact.lower():
                raise InvalidRequestError(
                    "cannot read the duration %r: use a number of seconds or units such as "
                    "'30m', '12h', '7d', '2w', '1d12h'" % (text,))
            seconds = sum(int(n) * _DURATION_UNITS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise InvalidRequestError('the duration %r must be longer than zero' % (text,))
    return datetime.timedelta(seconds=seconds)


@dataclass(frozen=True)
class GuestRef:
    """How the user named a guest. Exactly one of name, uuid or id is used to find it."""

    name: Optional[str] = None
    uuid: Optional[str] = None
    id: Optional[str] = None       # provider object id: VMware moid, OpenStack server id
    folder: Optional[str] = None   # narrows a name lookup where the provider has folders

    def describe(self) -> str:
        if self.id:
            return 'id %s' % self.id
        if self.uuid:
            return 'uuid %s' % self.uuid
        if self.folder:
            return "'%s' in folder '%s'" % (self.name, self.folder)
        return "'%s'" % self.name

    @classmethod
    def from_value(cls, value: Any) -> 'GuestRef':
        """A ``guests:`` list element: a bare name or a dict of name/uuid/id/folder."""
        if isinstance(value, str):
            ref = cls(name=value)
        elif isinstance(value, dict):
            unknown = set(value) - {'name', 'uuid', 'id', 'moid', 'folder'}
            if unknown:
                raise InvalidRequestError('unknown keys %s in a guests entry; use name, uuid, id/moid or folder'
                                          % ', '.join(sorted(unknown)))
            ref = cls(name=value.get('name'), uuid=value.get('uuid'),
                      id=value.get('id') or value.get('moid'), folder=value.get('folder'))
        else:
            raise InvalidRequestError('a guests entry must be a name or a dict, not %r' % (value,))
        ref.validate()
        return ref

    def validate(self) -> None:
        given = [k for k in ('name', 'uuid', 'id') if getattr(self, k)]
        if not given:
            raise InvalidRequestError('name the guest: give one of name, uuid or id')
        if len(given) > 1:
            raise InvalidRequestError('name the guest once: %s are mutually exclusive' % ' and '.join(given))


@dataclass
class Guest:
    """A guest the backend found: a stable id, its name and power state, and the SDK's handle."""

    id: str
    name: str
    power_state: str = 'unknown'
    handle: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return {'name': self.name, 'id': self.id, 'power_state': self.power_state}


@dataclass
class Marker:
    """Ownership stored with each snapshot this collection creates, in the provider itself."""

    owner: str
    created_by: str
    expires_at: Optional[datetime.datetime] = None

    def to_dict(self) -> Dict[str, Any]:
        return {'owner': self.owner, 'created_by': self.created_by, 'expires_at': to_iso(self.expires_at)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Optional['Marker']:
        if not isinstance(data, dict) or not data.get('owner'):
            return None
        return cls(owner=str(data['owner']), created_by=str(data.get('created_by') or ''),
                   expires_at=from_iso(data.get('expires_at')))


@dataclass
class SnapshotSpec:
    """What the user asked a snapshot to be."""

    name: str
    description: str = ''
    memory: Optional[bool] = None          # None: the provider's natural choice for the guest's state
    quiesce: str = 'never'
    kind: str = 'internal'
    marker: Optional[Marker] = None
    options: Dict[str, Any] = field(default_factory=dict)   # provider-only knobs (e.g. include_volumes)

    def validate(self) -> None:
        if not self.name or not str(self.name).strip():
            raise InvalidRequestError('snapshot_name must not be empty')
        if self.quiesce not in QUIESCE_POLICIES:
            raise InvalidRequestError('quiesce must be one of %s' % ', '.join(QUIESCE_POLICIES))
        if self.kind not in SNAPSHOT_KINDS:
            raise InvalidRequestError('kind must be one of %s' % ', '.join(SNAPSHOT_KINDS))


@dataclass
class SnapshotRecord:
    """One snapshot as every provider reports it."""

    name: str
    id: str
    parent: Optional[str] = None           # parent snapshot's name
    parent_id: Optional[str] = None
    children: List[str] = field(default_factory=list)
    created_at: Optional[str] = None       # ISO 8601 UTC
    current: bool = False
    power_state: str = 'unknown'           # of the guest when the snapshot was taken
    memory: bool = False
    quiesced: Optional[bool] = None        # None: the provider does not record it
    kind: str = 'internal'
    size_bytes: Optional[int] = None       # None: the provider cannot tell (never guessed)
    description: str = ''
    owner: Optional[str] = None
    created_by: Optional[str] = None
    expires_at: Optional[str] = None
    provider_details: Dict[str, Any] = field(default_factory=dict)

    def apply_marker(self, marker: Optional[Marker]) -> None:
        if marker is not None:
            self.owner = marker.owner
            self.created_by = marker.created_by
            self.expires_at = to_iso(marker.expires_at)

    @property
    def owned(self) -> bool:
        return bool(self.owner)

    def expires_datetime(self) -> Optional[datetime.datetime]:
        return from_iso(self.expires_at)

    def created_datetime(self) -> Optional[datetime.datetime]:
        return from_iso(self.created_at)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data['children'] = list(self.children)
        return data


@dataclass
class Capabilities:
    """What a provider can do for one guest. Every False carries the reason the user will read."""

    memory: bool = True
    quiesce: bool = False
    internal: bool = True
    external: bool = False
    revert: bool = True
    revert_external: bool = False
    delete_children: bool = True
    concurrent: bool = False
    reasons: Dict[str, str] = field(default_factory=dict)

    def why_not(self, what: str, default: str) -> str:
        return self.reasons.get(what, default)


def descendants(snapshots: List[SnapshotRecord], root: SnapshotRecord) -> List[SnapshotRecord]:
    """Every snapshot below ``root`` in the tree (children, their children, ...)."""
    found: List[SnapshotRecord] = []
    frontier = [root.id]
    while frontier:
        parent = frontier.pop()
        for snap in snapshots:
            if snap.parent_id == parent:
                found.append(snap)
                frontier.append(snap.id)
    return found


def render_tree(snapshots: List[SnapshotRecord]) -> str:
    """The snapshot tree as indented text, for --diff and human-readable results."""
    by_id = {s.id: s for s in snapshots}
    children: Dict[Optional[str], List[SnapshotRecord]] = {}
    for snap in snapshots:
        parent = snap.parent_id if snap.parent_id in by_id else None
        children.setdefault(parent, []).append(snap)
    lines: List[str] = []

    def walk(parent: Optional[str], depth: int) -> None:
        for snap in sorted(children.get(parent, []), key=lambda s: (s.created_at or '', s.name)):
            flags = []
            if snap.current:
                flags.append('current')
            if snap.memory:
                flags.append('memory')
            if snap.expires_at:
                flags.append('expires %s' % snap.expires_at)
            lines.append('%s%s%s' % ('  ' * depth, snap.name, ' (%s)' % ', '.join(flags) if flags else ''))
            walk(snap.id, depth + 1)

    walk(None, 0)
    return '\n'.join(lines) + ('\n' if lines else '')

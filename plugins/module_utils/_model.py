# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider-neutral data model: what a guest, a snapshot request and a
snapshot record are, whatever the hypervisor or cloud behind them."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from ._errors import InvalidRequestError

QUIESCE_POLICIES = ('required', 'preferred', 'never')
SNAPSHOT_KINDS = ('internal', 'external')
POWER_AFTER_REVERT = ('restore', 'on', 'off')

#: units of a duration, in the only order they may be written (each at most once): 1w2d3h4m5s
_DURATION_UNITS = (('w', 604800), ('d', 86400), ('h', 3600), ('m', 60), ('s', 1))
_DURATION_RE = re.compile(r'^%s$' % ''.join(r'(?:(\d+)%s)?' % unit for unit, _size in _DURATION_UNITS), re.IGNORECASE)
#: the longest duration accepted: 100 years (longer is a typo, and datetime ends at year 9999)
MAX_DURATION = datetime.timedelta(days=36525)
#: control characters: never in names (they fake lines of --diff output, NUL breaks every SDK)
_CONTROL_RE = re.compile('[\x00-\x1f\x7f-\x9f]')
_CONTROL_IN_TEXT_RE = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f]')


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def to_iso(value: Optional[datetime.datetime]) -> Optional[str]:
    """ISO 8601 in UTC with a Z, second precision: the one time format of every result."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


def from_iso(text: Any) -> Optional[datetime.datetime]:
    """An ISO 8601 time, or None for anything else (also non-strings from a hand-edited marker)."""
    if not text or not isinstance(text, str):
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


def parse_duration(text: Any, option: str = 'duration') -> datetime.timedelta:
    """``7d``, ``12h``, ``1w2d``, ``90m``, ``3600s`` -> timedelta; errors name ``option``.

    A unit is required: a bare number (seconds? days?) is refused, as a typo
    such as ``older_than: 7`` would otherwise select every snapshot.
    """
    if isinstance(text, bool) or text is None:
        raise InvalidRequestError('%s must be a duration such as 12h or 7d, not %r' % (option, text))
    raw = str(text).strip()
    if len(raw) > 40:  # no duration is that long; do not echo all of it
        text = raw[:20] + '...'
        if raw[:-1].isdigit() and raw[-1:].lower() in 'wdhms':
            raise InvalidRequestError('%s: the duration %r is longer than the maximum of %d days'
                                      % (option, text, MAX_DURATION.days))
    if not raw:
        raise InvalidRequestError('%s must not be empty: give a duration such as 12h or 7d' % option)
    if raw.isdigit():
        raise InvalidRequestError("%s: %r has no unit; write it with one, for example '%ss' (seconds) or '%sd' "
                                  "(days)" % (option, text, raw[:12], raw[:12]))
    match = _DURATION_RE.match(raw.replace(' ', ''))
    if match is None or not any(match.groups()):
        raise InvalidRequestError(
            "%s: cannot read the duration %r: use units w, d, h, m, s, each at most once and in that order, "
            "such as '30m', '12h', '7d', '2w', '1d12h'" % (option, text))
    seconds = 0
    for number, (_unit, size) in zip(match.groups(), _DURATION_UNITS):
        if number:
            if len(number) > 12:   # int('9' * 5000) is slow and any such value is out of range anyway
                seconds = MAX_DURATION.total_seconds() + 1
                break
            seconds += int(number) * size
    if seconds <= 0:
        raise InvalidRequestError('%s: the duration %r must be longer than zero' % (option, text))
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidRequestError('%s: the duration %r is longer than the maximum of %d days'
                                  % (option, text, MAX_DURATION.days))
    return datetime.timedelta(seconds=seconds)


def check_text(value: Any, option: str, multiline: bool = False) -> None:
    """Refuse control characters (a newline only where ``multiline``), naming the option."""
    if not isinstance(value, str):
        return
    found = (_CONTROL_IN_TEXT_RE if multiline else _CONTROL_RE).search(value)
    if found:
        raise InvalidRequestError('%s must not contain control characters (found %r at position %d)'
                                  % (option, found.group(), found.start()))


def normalise_description(text: Optional[str]) -> str:
    """The form a description is stored and compared in: trailing newlines and spaces dropped
    (YAML ``|`` adds a newline; providers trim it), so a re-run compares equal."""
    return (text or '').rstrip()


@dataclass(frozen=True)
class GuestRef:
    """How the user named a guest. Exactly one of name, uuid or id is used to find it."""

    name: Optional[str] = None
    uuid: Optional[str] = None
    id: Optional[str] = None       # provider object id: VMware moid, OpenStack server id
    folder: Optional[str] = None   # narrows a name lookup where the provider has folders
    #: the provider of this guest in a set across providers (a ``guests`` entry's ``provider``);
    #: None when the task's one provider manages every guest
    provider: Optional[str] = None

    def describe(self) -> str:
        if self.id:
            return 'id %s' % self.id
        if self.uuid:
            return 'uuid %s' % self.uuid
        if self.folder:
            return "'%s' in folder '%s'" % (self.name, self.folder)
        return "'%s'" % self.name

    @classmethod
    def from_value(cls, value: Any, keys: Optional[Dict[str, str]] = None, provider: str = '') -> 'GuestRef':
        """A ``guests:`` list element: a bare name or a dict. ``keys`` maps the entry keys the
        provider takes to GuestRef fields (e.g. moid -> id); messages name the key the user wrote."""
        keys = keys or {'name': 'name', 'uuid': 'uuid', 'id': 'id', 'moid': 'id', 'folder': 'folder'}
        if isinstance(value, str):
            value = {'name': value}
        if not isinstance(value, dict):
            raise InvalidRequestError('a guests entry must be a name or a dict, not %r' % (value,))
        shown = ', '.join(sorted(keys))
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise InvalidRequestError('guests entry %r: %s not used%s; use %s'
                                      % (value, ', '.join("'%s'" % k for k in unknown),
                                         ' by provider %s' % provider if provider else '', shown))
        fields: Dict[str, str] = {}
        used: Dict[str, str] = {}
        for key, item in value.items():
            if item is None:
                continue
            if not isinstance(item, str) or not item.strip():
                raise InvalidRequestError('guests entry %r: %s must be a non-empty string' % (value, key))
            check_text(item, 'guests entry %s' % key)
            field_name = keys[key]
            if field_name in fields:
                raise InvalidRequestError('guests entry %r: %s and %s mean the same; give one'
                                          % (value, used[field_name], key))
            fields[field_name] = item
            used[field_name] = key
        ids = [used[f] for f in ('name', 'uuid', 'id') if f in fields]
        if not ids:
            raise InvalidRequestError('guests entry %r: name the guest with one of %s'
                                      % (value, ', '.join(k for k in sorted(keys) if keys[k] != 'folder')))
        if len(ids) > 1:
            raise InvalidRequestError('guests entry %r: give one of %s, not %s'
                                      % (value, ', '.join(ids), ' and '.join(ids)))
        return cls(**fields)

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
    #: what only this provider knows of the guest (VMware: consolidation_needed); empty for most
    provider_details: Dict[str, Any] = field(default_factory=dict, compare=False)
    #: which provider manages it; set by the cross-provider backend (_composite.py), which routes
    #: every call on this guest by it; '' when the task's one backend manages every guest
    provider: str = field(default='', compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return {'name': self.name, 'id': self.id, 'power_state': self.power_state,
                'provider_details': dict(self.provider_details)}


@dataclass
class Marker:
    """Ownership stored with each snapshot this collection creates, in the provider itself."""

    owner: str
    created_by: str
    expires_at: Optional[datetime.datetime] = None
    #: how long the guest was paused (blocked) while the snapshot was taken, measured at create time
    #: where the provider shows it (libvirt); None: not known (never written as 0)
    guest_blocked_seconds: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        data = {'owner': self.owner, 'created_by': self.created_by, 'expires_at': to_iso(self.expires_at)}
        if self.guest_blocked_seconds is not None:
            data['guest_blocked_seconds'] = self.guest_blocked_seconds
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Optional['Marker']:
        """The marker stored with a snapshot; None when there is none. Raises ValueError naming what
        is unreadable (a hand edit), so the caller can treat the snapshot as not owned and say why."""
        if not isinstance(data, dict):
            raise ValueError('the marker is not a JSON object')
        owner = data.get('owner')
        if not isinstance(owner, str) or not owner.strip():
            raise ValueError('owner is %r, not a non-empty string' % (owner,))
        created_by = data.get('created_by')
        if created_by is not None and not isinstance(created_by, str):
            raise ValueError('created_by is %r, not a string' % (created_by,))
        expires = data.get('expires_at')
        expires_at = from_iso(expires)
        if expires not in (None, '') and expires_at is None:
            raise ValueError('expires_at is %r, not an ISO 8601 time' % (expires,))
        blocked = data.get('guest_blocked_seconds')
        # A pause time is a report figure: one that cannot be read is unknown, the marker stays valid.
        if isinstance(blocked, bool) or not isinstance(blocked, (int, float)) or not 0 <= blocked < 10 ** 7:
            blocked = None
        return cls(owner=owner, created_by=created_by or '', expires_at=expires_at,
                   guest_blocked_seconds=None if blocked is None else float(blocked))


@dataclass
class SnapshotSpec:
    """What the user asked a snapshot to be (its name: the Request's snapshot_name)."""

    name: str = ''
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
    #: seconds the guest was paused while this snapshot was taken, from the marker; None: unknown
    #: (a snapshot this collection did not take, or a provider that does not show it)
    guest_blocked_seconds: Optional[float] = None
    provider_details: Dict[str, Any] = field(default_factory=dict)
    #: why a stored marker could not be read (the snapshot then counts as not owned); not in results
    marker_problem: Optional[str] = field(default=None, repr=False, compare=False)

    def apply_marker(self, marker: Optional[Marker]) -> None:
        if marker is not None:
            self.owner = marker.owner
            self.created_by = marker.created_by
            self.expires_at = to_iso(marker.expires_at)
            self.guest_blocked_seconds = marker.guest_blocked_seconds

    @property
    def owned(self) -> bool:
        return bool(self.owner)

    def expires_datetime(self) -> Optional[datetime.datetime]:
        return from_iso(self.expires_at)

    def created_datetime(self) -> Optional[datetime.datetime]:
        return from_iso(self.created_at)

    def to_dict(self) -> Dict[str, Any]:
        # What dataclasses.asdict gives without its generic deep copy, a third of the cost of a result of
        # 1,000 guests: the fields are plain values but for the list and the dict, copied here.
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        data['children'] = list(self.children)
        data['provider_details'] = _plain_copy(self.provider_details)
        return data


#: SnapshotRecord's fields in results (marker_problem is not one)
_RECORD_FIELDS = tuple(f.name for f in fields(SnapshotRecord) if f.name != 'marker_problem')


def _plain_copy(value: Any) -> Any:
    """A copy of nested dicts and lists of plain values (as dataclasses.asdict copies them)."""
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_copy(item) for item in value)
    return value


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
    rename: bool = False                   # new name and/or description of an existing snapshot
    consolidate: bool = False              # disk consolidation after removals (VMware)
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

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which owned snapshots a retention rule removes. Pure logic, no provider."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ._errors import InvalidRequestError
from ._model import SnapshotRecord, parse_duration, utcnow

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


@dataclass
class RetentionRule:
    """A snapshot is removed when ANY given criterion selects it:
    past its expiry, older than ``older_than``, or beyond the newest ``keep_last``."""

    keep_last: Optional[int] = None
    older_than: Optional[datetime.timedelta] = None
    expired: bool = False

    @classmethod
    def from_options(cls, keep_last: Any = None, older_than: Any = None, expired: Any = False) -> 'RetentionRule':
        if keep_last is not None:
            keep_last = int(keep_last)
            if keep_last < 0:
                raise InvalidRequestError('keep_last must be 0 or more')
        rule = cls(keep_last=keep_last,
                   older_than=parse_duration(older_than, 'older_than') if older_than is not None else None,
                   expired=bool(expired))
        if rule.keep_last is None and rule.older_than is None and not rule.expired:
            raise InvalidRequestError('state=pruned needs a rule: keep_last, older_than and/or expired: true')
        return rule


def tree_depths(snapshots: List[SnapshotRecord]) -> Dict[str, int]:
    parents = {s.id: s.parent_id for s in snapshots}
    depths: Dict[str, int] = {}
    for snap in snapshots:
        depth, node, seen = 0, snap.parent_id, set()
        while node in parents and node not in seen:
            seen.add(node)
            depth += 1
            node = parents[node]
        depths[snap.id] = depth
    return depths


def select_for_removal(snapshots: List[SnapshotRecord], owner: str, rule: RetentionRule,
                       now: Optional[datetime.datetime] = None) -> List[Dict[str, Any]]:
    """[{snapshot, reason}] of the snapshots ``owner`` owns that ``rule`` removes, oldest first.

    A snapshot without this owner's marker is never selected, whatever its age.
    """
    now = now or utcnow()
    owned = [s for s in snapshots if s.owner == owner]
    # Providers record creation times to the second; within one second a
    # descendant is still newer than its ancestor, then the provider's order counts.
    depth = tree_depths(snapshots)
    order = {id(s): i for i, s in enumerate(snapshots)}
    owned.sort(key=lambda s: (s.created_datetime() or _EPOCH, depth.get(s.id, 0), order[id(s)]))
    keep_from = len(owned) - rule.keep_last if rule.keep_last is not None else None
    selected = []
    for index, snap in enumerate(owned):
        reasons = []
        expires = snap.expires_datetime()
        created = snap.created_datetime()
        if rule.expired and expires is not None and expires <= now:
            reasons.append('expired at %s' % snap.expires_at)
        if rule.older_than is not None and created is not None and now - created > rule.older_than:
            reasons.append('created %s, older than %ds' % (snap.created_at, rule.older_than.total_seconds()))
        if keep_from is not None and index < keep_from:
            reasons.append('not among the newest %d' % rule.keep_last)
        if reasons:
            selected.append({'snapshot': snap, 'reason': '; '.join(reasons)})
    return selected

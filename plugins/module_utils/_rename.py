# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Selecting a snapshot by id, and renaming one (``new_snapshot_name``/``new_description``).

Pure logic the engine calls from its decide and read-back phases; no provider and no
Ansible here. A rename is an action of state=present: the snapshot named by
``snapshot_name`` (or ``snapshot_id``) gets the new name and/or description; a re-run
finds it under the new name and reports ``exists``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, Optional

from ._errors import (
    AmbiguousSnapshotError, ProviderError, SnapshotConflictError, SnapshotNotFoundError, UnsupportedError,
)
from ._model import Guest, SnapshotRecord, normalise_description

if TYPE_CHECKING:  # pragma: no cover - for type checkers only (the engine imports this module)
    from ._request import GuestPlan, Request

Finder = Callable[[List[SnapshotRecord], str, Guest], Optional[SnapshotRecord]]


def select(snapshots: List[SnapshotRecord], request: 'Request', guest: Guest,
           by_name: Finder) -> Optional[SnapshotRecord]:
    """The snapshot a request names: by ``snapshot_id`` when given (and then its name must match
    ``snapshot_name`` if that is given too), else by ``snapshot_name``."""
    if not request.snapshot_id:
        return by_name(snapshots, request.snapshot_name or '', guest)
    wanted = request.snapshot_id
    # The provider's id (vSphere moref 'snapshot-42', libvirt name, Glance image id); VMware also
    # records the snapshot's numeric id, which community.vmware calls snapshot_id.
    matches = [s for s in snapshots
               if s.id == wanted or str(s.provider_details.get('snapshot_id', '')) == wanted]
    if len(matches) > 1:
        raise AmbiguousSnapshotError("guest '%s' has %d snapshots with id '%s' (%s)" % (
            guest.name, len(matches), wanted, ', '.join(s.id for s in matches)))
    found = matches[0] if matches else None
    if found is not None and request.snapshot_name and found.name != request.snapshot_name:
        raise SnapshotConflictError("guest '%s': snapshot_id '%s' is snapshot '%s', not '%s' as snapshot_name says"
                                    % (guest.name, wanted, found.name, request.snapshot_name))
    return found


def what_is_asked(request: 'Request') -> str:
    if request.snapshot_id:
        return "snapshot_id '%s'" % request.snapshot_id
    return "snapshot '%s'" % request.snapshot_name


def unchanged(snap: SnapshotRecord, request: 'Request') -> bool:
    name_ok = not request.new_name or snap.name == request.new_name
    desc_ok = request.new_description is None or (
        normalise_description(snap.description) == normalise_description(request.new_description))
    return name_ok and desc_ok


def decide(request: 'Request', plan: 'GuestPlan', by_name: Finder, provider: str) -> None:
    """Plan a rename for one guest: ``action='rename'``, or ``outcome='exists'`` when already done."""
    guest = plan.guest
    snap = select(plan.snapshots, request, guest, by_name)
    if snap is None and request.new_name and not request.snapshot_id:
        # A re-run of a rename that happened: the snapshot now carries the new name.
        done = by_name(plan.snapshots, request.new_name, guest)
        if done is not None and unchanged(done, request):
            plan.existing = done
            plan.outcome = 'exists'
            return
    if snap is None:
        names = ', '.join(s.name for s in plan.snapshots) or 'none'
        raise SnapshotNotFoundError("guest '%s' has no %s to rename (it has: %s)"
                                    % (guest.name, what_is_asked(request), names))
    plan.existing = snap
    if unchanged(snap, request):
        plan.outcome = 'exists'
        return
    if request.new_name and request.new_name != snap.name:
        clash = [s for s in plan.snapshots if s.name == request.new_name and s.id != snap.id]
        if clash:
            # Names select snapshots in every other task: two of one name would make them ambiguous.
            raise SnapshotConflictError("guest '%s' already has a snapshot '%s' (id %s); renaming '%s' to it "
                                        "would make the name ambiguous" % (guest.name, request.new_name,
                                                                           clash[0].id, snap.name))
    if not plan.capabilities.rename:
        raise UnsupportedError(plan.capabilities.why_not('rename', '%s cannot rename snapshots' % provider))
    plan.action = 'rename'
    plan.targets = [snap]
    plan.reasons.append(', '.join(part for part in (
        "name '%s' -> '%s'" % (snap.name, request.new_name) if request.new_name and request.new_name != snap.name
        else '', 'new description' if request.new_description is not None else '') if part))


def read_back(request: 'Request', plan: 'GuestPlan', after: List[SnapshotRecord], provider: str) -> SnapshotRecord:
    """The renamed snapshot as the provider now shows it; a rename it does not show is a failure."""
    target = plan.targets[0]
    now = next((s for s in after if s.id == target.id), None)
    if now is None or not unchanged(now, request):
        raise ProviderError("%s reported snapshot '%s' of guest '%s' as renamed, but it reads back as %s"
                            % (provider, target.name, plan.guest.name,
                               "'%s'" % now.name if now is not None else 'gone'))
    return now

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""include_volumes: Cinder snapshots of a server's data volumes in the same restore point,
reverted with Cinder revert-to-snapshot (volume API microversion 3.40)."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

from ..._errors import SavepointError, UnsupportedError
from ..._model import Guest, SnapshotRecord, SnapshotSpec
from .connection import attached_volume_ids
from .images import MAX_VALUE, P_CREATED_BY, P_NAME, P_OWNER, P_SERVER, included_snapshot_ids

#: volume microversion of Cinder's revert-to-snapshot (include_volumes)
VOLUME_REVERT_MICROVERSION = '3.40'
#: a Cinder snapshot id and its separator: at most 6 fit into one 255-character image property
MAX_VOLUMES = MAX_VALUE // 37
#: seconds a clean-up waits for volume snapshots still being created (Cinder deletes none while 'creating')
SETTLE_SECONDS = 30.0


def cinder_time(value: Any) -> str:
    """Cinder's created_at to the second (its database keeps no more; "latest" is decided on it)."""
    text = str(value or '').replace('T', ' ')
    return text.split('.', maxsplit=1)[0].rstrip('Z').split('+', maxsplit=1)[0]


def plural(items: List[str], one: str, many: str) -> str:
    return many if len(items) > 1 else one


class VolumesMixin:
    """Cinder side of include_volumes: checks, snapshots, clean-up, the revert plan and the revert."""

    conn: Any

    def _check_include_volumes(self, guest: Guest) -> None:
        """include_volumes: refuse, before anything is written, what could not be reverted later."""
        server = self._server(guest.id)
        if self._boot_from_volume(server):
            raise UnsupportedError("server '%s' boots from volume: its createImage snapshot already holds a Cinder "
                                   "snapshot of every attached volume, and include_volumes (revert of data volumes "
                                   "by Cinder revert-to-snapshot) is only offered for image-backed servers; leave "
                                   "include_volumes unset" % guest.name)
        if self._volume_microversion() < (3, 40):
            raise UnsupportedError("include_volumes needs Cinder revert-to-snapshot (volume API microversion %s); "
                                   "this cloud offers at most %d.%d"
                                   % ((VOLUME_REVERT_MICROVERSION,) + self._volume_microversion()))
        volumes = attached_volume_ids(server)
        if len(volumes) > MAX_VOLUMES:
            raise UnsupportedError("server '%s' has %d attached volumes; include_volumes records at most %d volume "
                                   "snapshots in one image property" % (guest.name, len(volumes), MAX_VOLUMES))

    def _snapshot_volumes(self, guest: Guest, server: Any, spec: SnapshotSpec,
                          marker_data: Dict[str, Any]) -> List[str]:
        """Cinder snapshots of every attached data volume (forced: they are in-use); on a failure the ones
        already made are deleted again and the error raised, so nothing half-made remains."""
        made: List[str] = []
        metadata = {P_SERVER: server.id, P_NAME: spec.name, P_OWNER: marker_data.get('owner') or '',
                    P_CREATED_BY: marker_data.get('created_by') or ''}
        for volume_id in attached_volume_ids(server):
            doing = "snapshotting volume %s of server '%s' for snapshot '%s'" % (volume_id, guest.name, spec.name)
            try:
                snap = self._call(lambda volume_id=volume_id: self.conn.block_storage.create_snapshot(
                    volume_id=volume_id, name='savepoint-%s' % spec.name, is_forced=True,
                    description="volume snapshot of savepoint.virt snapshot '%s' of server %s"
                                % (spec.name, server.id),
                    metadata=metadata), doing)
            except SavepointError as exc:
                self._drop_volume_snapshots(made, exc)
                raise
            made.append(snap.id)
        return made

    def _volume_snapshot_info(self, snapshot_id: str) -> Dict[str, Any]:
        snap = self._call(lambda: self.conn.block_storage.find_snapshot(snapshot_id, ignore_missing=True),
                          'reading volume snapshot %s' % snapshot_id)
        if snap is None:
            return {'snapshot_id': snapshot_id, 'volume_id': None, 'status': 'missing', 'size_gb': None,
                    'size_bytes': None}
        size = getattr(snap, 'size', None)
        return {'snapshot_id': snapshot_id, 'volume_id': snap.volume_id, 'status': snap.status,
                'size_gb': size, 'size_bytes': int(size) * 1024 ** 3 if size is not None else None}

    def _volume_snapshot_status(self, snapshot_id: str) -> Tuple[Any, str]:
        snap = self._call(lambda: self.conn.block_storage.find_snapshot(snapshot_id, ignore_missing=True),
                          'reading volume snapshot %s' % snapshot_id)
        return snap, (snap.status if snap is not None else 'deleted')

    def _delete_volume_snapshots(self, snapshot_ids: List[str]) -> List[str]:
        """Best-effort delete (clean-up of a failed create); returns the ids that could not be deleted.

        Cinder refuses to delete a snapshot that is still 'creating', so those are waited for first
        (openstacksdk's wait_for_status), all of them within SETTLE_SECONDS.
        """
        left = []
        storage = self.conn.block_storage
        deadline = time.monotonic() + SETTLE_SECONDS
        for sid in snapshot_ids:
            try:
                snap = storage.find_snapshot(sid, ignore_missing=True)
                if snap is not None and snap.status == 'creating':
                    remaining = max(1, int(deadline - time.monotonic()))
                    try:
                        snap = storage.wait_for_status(snap, status='available', failures=['error'], interval=0.5,
                                                       wait=remaining)
                    except Exception:  # still creating or failed: the delete below says whether it can go
                        pass
                if snap is not None:
                    storage.delete_snapshot(sid, ignore_missing=True)
            except Exception:  # reported by the caller, the original error stays the one raised
                left.append(sid)
        return left

    def _drop_volume_snapshots(self, snapshot_ids: List[str], error: SavepointError) -> None:
        """Best-effort removal of the volume snapshots of a create that failed; the error says what happened."""
        if not snapshot_ids:
            return
        left = self._delete_volume_snapshots(snapshot_ids)
        if left:
            error.msg += '; the volume %s %s could not be deleted: remove by hand' % (
                plural(left, 'snapshot', 'snapshots'), ', '.join(left))
        else:
            error.msg += '; the volume %s %s made for it %s deleted' % (
                plural(snapshot_ids, 'snapshot', 'snapshots'), ', '.join(snapshot_ids),
                plural(snapshot_ids, 'was', 'were'))
        error.args = (error.msg,)

    def _volume_revert_plan(self, guest: Guest, snapshot: SnapshotRecord,
                            image: Dict[str, Any]) -> List[Tuple[str, str]]:
        """include_volumes: (volume id, Cinder snapshot id) pairs to revert, or an UnsupportedError saying why
        a volume cannot be reverted -- all checked before anything is written."""
        included = included_snapshot_ids(image)
        if not included:
            return []
        name = "snapshot '%s' of server '%s'" % (snapshot.name, guest.name)
        if self._volume_microversion() < (3, 40):
            raise UnsupportedError('%s holds snapshots of %d data volume(s); reverting them needs Cinder '
                                   'revert-to-snapshot (volume API microversion %s), this cloud offers at most %d.%d'
                                   % ((name, len(included), VOLUME_REVERT_MICROVERSION)
                                      + self._volume_microversion()))
        plan, problems = [], []
        for sid in included:
            problem, pair = self._volume_revert_problem(sid, name)
            if problem:
                problems.append(problem)
            else:
                plan.append(pair)
        if problems:
            raise UnsupportedError('%s cannot be reverted with its data volumes, nothing was changed: %s'
                                   % (name, '; '.join(problems)))
        return plan

    def _volume_revert_problem(self, sid: str, name: str) -> Tuple[str, Tuple[str, str]]:
        """Why the volume of Cinder snapshot ``sid`` cannot be reverted to it ('' = it can), and the pair."""
        storage = self.conn.block_storage
        snap = self._call(lambda: storage.find_snapshot(sid, ignore_missing=True),
                          'reading volume snapshot %s of %s' % (sid, name))
        if snap is None:
            return 'its volume snapshot %s is gone' % sid, ('', '')
        if snap.status != 'available':
            return ('its volume snapshot %s (of volume %s) is %s, not available'
                    % (sid, snap.volume_id, snap.status), ('', ''))
        volume = self._call(lambda: storage.find_volume(snap.volume_id, ignore_missing=True),
                            'reading volume %s' % snap.volume_id)
        if volume is None:
            return 'volume %s (volume snapshot %s) no longer exists' % (snap.volume_id, sid), ('', '')
        if volume.status != 'available':
            attached = [a.get('server_id') for a in getattr(volume, 'attachments', None) or [] if isinstance(a, dict)]
            return ('volume %s is %s%s: Cinder reverts only detached (available) volumes, and this collection does '
                    'not detach volumes behind the guest\'s back; detach it (openstack server remove volume), run '
                    'the revert again, then attach it again'
                    % (volume.id, volume.status,
                       ' (attached to server %s)' % ', '.join(attached) if attached else ''), ('', ''))
        others = self._call(lambda: list(storage.snapshots(details=True, volume_id=volume.id)),
                            'listing the snapshots of volume %s' % volume.id)
        mine = cinder_time(snap.created_at)
        later = [o.id for o in others if o.id != sid and cinder_time(o.created_at) > mine]
        same = [o.id for o in others if o.id != sid and cinder_time(o.created_at) == mine]
        if later:
            return ('volume snapshot %s is not the latest snapshot of volume %s (newer: %s), and Cinder reverts a '
                    'volume only to its latest snapshot; delete the newer snapshot(s) first (for restore points of '
                    'this collection: their snapshot with state: absent)' % (sid, volume.id, ', '.join(later)),
                    ('', ''))
        if same:
            return ('volume snapshot %s of volume %s was taken in the same second as %s; Cinder picks the latest '
                    'snapshot by its created_at (1 s resolution), so it cannot tell which one is latest'
                    % (sid, volume.id, ', '.join(same)), ('', ''))
        return '', (volume.id, sid)

    def _revert_volumes(self, snapshot: SnapshotRecord, plan: List[Tuple[str, str]]) -> List[str]:
        """Start Cinder's revert of every volume in the plan; returns the volumes being reverted. A failure
        says which volumes were already started (they cannot be stopped)."""
        reverted: List[str] = []
        for volume_id, sid in plan:
            try:
                self._call(lambda volume_id=volume_id, sid=sid:
                           self.conn.block_storage.revert_volume_to_snapshot(volume_id, sid),
                           "reverting volume %s to volume snapshot %s of snapshot '%s'"
                           % (volume_id, sid, snapshot.name))
            except SavepointError as exc:
                if reverted:
                    exc.msg += ('; volume%s %s %s already being reverted, the server was not rebuilt'
                                % ('s' if len(reverted) > 1 else '', ', '.join(reverted),
                                   plural(reverted, 'is', 'are')))
                    exc.args = (exc.msg,)
                raise
            reverted.append(volume_id)
        return reverted

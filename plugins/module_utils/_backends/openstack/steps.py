# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The asynchronous steps of the backend, typed: what each one waits for, and how it is polled.

An Operation's ``handle`` is one of the step classes below; ``poll`` dispatches on its type.
A create that does not finish (deadline, failure) is abandoned: its image and volume snapshots
are deleted so that no half-made restore point is ever listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._errors import ProviderError, SavepointError, WaitTimeoutError
from ..._model import SnapshotRecord
from ..._waiting import Operation, ProgressCallback, WaitPolicy
from .images import GONE, M_CURRENT, P_PARENT, P_SELF, bdm_snapshot_ids, flat, owned, server_image_id
from .volumes import plural


@dataclass
class CreateStep:
    """createImage was called: move the server's current-snapshot pointer at the first poll, wait for the
    image (and include_volumes' Cinder snapshots), mark it once it is active.

    ``base`` is the server's image, ``parent`` the current snapshot and ``previous_current`` the pointer's
    metadata when createImage was called: the pointer is put back from it when the snapshot fails.
    """
    image_id: str
    server_id: str
    volume_snapshots: List[str] = field(default_factory=list)
    base: str = ''
    parent: Optional[SnapshotRecord] = None
    previous_current: Dict[str, str] = field(default_factory=dict)
    pointer_moved: bool = False
    #: why the pointer could not be put back after a failure (reported with the failure)
    pointer_problem: str = ''


@dataclass
class RebuildStep:
    """Image-backed revert: the server is rebuilt from the snapshot image, data volumes reverted by Cinder."""
    image_id: str
    server_id: str
    volumes: List[Tuple[str, str]] = field(default_factory=list)


@dataclass
class ReimageStep:
    """Boot-from-volume revert: rebuilt onto the carrier image, Cinder re-images the root volume."""
    image_id: str
    server_id: str
    root_volume: str
    carrier: Optional[str] = None


@dataclass
class PowerStep:
    """One Nova power action after a revert; ``want`` is the Nova status it leads to."""
    server_id: str
    want: str


@dataclass
class DeleteStep:
    """The volume snapshots of the doomed images are being deleted; the images go once they are gone."""
    server_id: str
    doomed: List[str]
    volume_snapshots: List[str] = field(default_factory=list)


def fault_of(server: Any) -> str:
    fault = getattr(server, 'fault', None) or {}
    return (fault.get('message') or '') if isinstance(fault, dict) else str(fault)


def _settled(server: Any) -> bool:
    return not getattr(server, 'task_state', None) and server.status in ('ACTIVE', 'SHUTOFF')


class StepsMixin:
    """poll() and wait() of the backend."""

    conn: Any

    def poll(self, operation: Operation) -> None:
        if operation.done:
            return
        try:
            self._poll(operation)
        except SavepointError as exc:
            # Lost the service while waiting: the operation may still run there; say so.
            raise type(exc)("waiting for the %s of snapshot '%s' on server '%s' failed: %s; it may still be running "
                            "on the cloud: check before retrying"
                            % (operation.action, operation.snapshot_name, operation.guest.name, exc.msg),
                            provider_message=exc.provider_message, details=exc.details)

    def _poll(self, operation: Operation) -> None:
        handlers: Dict[type, Callable[[Operation, Any], None]] = {
            CreateStep: self._poll_create, RebuildStep: self._poll_rebuild, ReimageStep: self._poll_reimage,
            PowerStep: self._poll_power, DeleteStep: self._poll_delete,
        }
        handler = handlers.get(type(operation.handle))
        if handler is None:
            raise ProviderError('openstack: cannot poll an unknown %s operation' % operation.action)
        handler(operation, operation.handle)

    def _poll_create(self, op: Operation, step: CreateStep) -> None:
        resource = self._image_resource(step.image_id)
        image = None if resource is None else flat(resource)
        name = op.snapshot_name
        if image is None or image.get('status') in GONE:
            fault = fault_of(self._server(step.server_id))
            op.finish(error=ProviderError(
                "snapshot '%s' of server '%s' failed: Nova %s the image %s%s"
                % (name, op.guest.name, 'removed' if image is None else 'left %s' % image.get('status'),
                   step.image_id, ' (%s)' % fault if fault else ''), provider_message=fault or None))
            self._abandon(op)
            return
        read_server: Optional[Callable[[], Any]] = None
        try:
            # The pointer is moved at the first poll, while Glance is (usually) still saving, so that this
            # call is not left for after the end; a snapshot that fails gets it put back (_abandon).
            # Nova keys server metadata by row, so this write cannot undo Nova's own work on the server.
            if not step.pointer_moved:
                step.pointer_moved = True   # before the call: a write that failed half-way is put back too
                self._set_current(step.server_id, step.image_id, step.base)
            if image.get('status') != 'active':
                return   # one call per poll while Glance is still saving: the server is read once it is done
            # Pitfall: the image is marked only now. Glance saves a PATCH as a whole row, so one sent while
            # Nova uploads can undo Nova's disk_format (the upload then fails and Nova deletes the image).
            if image.get(P_SELF) != image['id']:
                # The server is read beside the mark, not after it: the two are independent, and the
                # read has no effect, so a failed mark just drops it.
                read_server = self._server_meanwhile(step.server_id)
                image = self._mark_own(resource)
        except SavepointError as exc:
            op.finish(error=ProviderError("snapshot '%s' of server '%s' was taken but could not be marked: %s"
                                          % (name, op.guest.name, exc.msg), provider_message=exc.provider_message))
            self._abandon(op)
            return
        if read_server is not None:
            server = read_server()
            if getattr(server, 'task_state', None):
                # Nova clears the task a moment after Glance has the image active; a read sent at once
                # can predate that: read again now (as before, after the mark) rather than a poll later.
                server = self._server(step.server_id)
        else:
            server = self._server(step.server_id)
        if getattr(server, 'task_state', None):
            return
        for sid in step.volume_snapshots:
            snap, status = self._volume_snapshot_status(sid)
            if status == 'creating':
                return
            if status != 'available':
                op.finish(error=ProviderError("snapshot '%s' of server '%s' failed: Cinder left volume snapshot %s "
                                              "of volume %s %s" % (name, op.guest.name, sid,
                                                                   getattr(snap, 'volume_id', '?'), status)))
                self._abandon(op)
                return
        op.finish(result=self._created_record(image, server, step))

    def _created_record(self, image: Dict[str, Any], server: Any, step: CreateStep) -> SnapshotRecord:
        """The new snapshot's record from what was read after it became active: the image (as Glance
        answered the last read or write), the server (its current-snapshot pointer), and the tree as it
        was at createImage (its parent). Nothing can hang below an image made in this run, so no listing."""
        record = self._record(image)
        if step.parent is not None and record.parent_id == step.parent.id:
            record.parent = step.parent.name
        else:
            record.parent_id = None
        record.current = self._current_id(server, {record.id: record}) == record.id
        return record

    def _poll_rebuild(self, op: Operation, step: RebuildStep) -> None:
        server = self._server(step.server_id)
        if server.status == 'ERROR':
            fault = fault_of(server)
            op.finish(error=ProviderError("rebuilding server '%s' from snapshot '%s' failed; the server is in ERROR%s"
                                          % (op.guest.name, op.snapshot_name, ': %s' % fault if fault else ''),
                                          provider_message=fault or None))
            return
        if not _settled(server):
            return
        if server_image_id(server) != step.image_id:
            op.finish(error=ProviderError("server '%s' finished its rebuild on image %s, not on snapshot '%s' "
                                          "(image %s): the revert did not happen"
                                          % (op.guest.name, server_image_id(server) or '(none)', op.snapshot_name,
                                             step.image_id)))
            return
        if self._volumes_reverted(op, step):
            op.finish()

    def _volumes_reverted(self, op: Operation, step: RebuildStep) -> bool:
        """include_volumes: True once every data volume is back to available after its revert; a volume in
        error (Cinder's revert failed) finishes the operation with that error."""
        for volume_id, sid in step.volumes:
            volume = self._call(lambda volume_id=volume_id: self.conn.block_storage.get_volume(volume_id),
                                'reading volume %s' % volume_id)
            if volume.status == 'reverting':
                return False
            if volume.status != 'available':
                op.finish(error=ProviderError("Cinder could not revert volume %s to volume snapshot %s of snapshot "
                                              "'%s': the volume is %s (the server was rebuilt)"
                                              % (volume_id, sid, op.snapshot_name, volume.status)))
                return False
        return True

    def _poll_reimage(self, op: Operation, step: ReimageStep) -> None:
        server = self._server(step.server_id)
        if server.status == 'ERROR':
            fault = fault_of(server)
            self._drop_carrier(step)
            op.finish(error=ProviderError("re-imaging the root volume of server '%s' from snapshot '%s' failed; the "
                                          "server is in ERROR%s" % (op.guest.name, op.snapshot_name,
                                                                    ': %s' % fault if fault else ''),
                                          provider_message=fault or None))
            return
        if not _settled(server):
            return
        volumes = [v['id'] if isinstance(v, dict) else v.id for v in server.attached_volumes or []]
        volume = self._call(lambda: self.conn.block_storage.get_volume(step.root_volume),
                            'reading root volume %s' % step.root_volume)
        meta = getattr(volume, 'volume_image_metadata', None) or {}
        carrier = step.carrier
        self._drop_carrier(step)
        if step.root_volume not in volumes or meta.get('image_id') != carrier:
            op.finish(error=ProviderError("server '%s' finished its rebuild but Cinder did not re-image root volume "
                                          "%s from snapshot '%s': the revert did not happen"
                                          % (op.guest.name, step.root_volume, op.snapshot_name)))
            return
        op.finish()

    def _poll_power(self, op: Operation, step: PowerStep) -> None:
        server = self._server(step.server_id)
        if server.status == 'ERROR':
            op.finish(error=ProviderError("server '%s' went to ERROR while changing its power state: %s"
                                          % (op.guest.name, fault_of(server))))
            return
        if getattr(server, 'task_state', None):
            return
        if server.status == step.want:
            op.finish()
        elif server.status in ('ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED'):
            op.finish(error=ProviderError("server '%s' is %s after the revert, not %s as asked"
                                          % (op.guest.name, server.status, step.want)))

    def _poll_delete(self, op: Operation, step: DeleteStep) -> None:
        for sid in step.volume_snapshots:
            snap, status = self._volume_snapshot_status(sid)
            if snap is None:
                continue
            if status in ('error_deleting', 'error'):
                op.finish(error=ProviderError("volume snapshot %s of snapshot '%s' could not be deleted (%s); the "
                                              "snapshot image is kept, run the delete again"
                                              % (sid, op.snapshot_name, status)))
            return
        self._finish_delete(op, step)

    def _finish_delete(self, op: Operation, step: DeleteStep) -> None:
        server = self._server(step.server_id)
        records, images = self._records(server)
        doomed = set(step.doomed)
        by_id = {r.id: r for r in records}
        current = next((r for r in records if r.current), None)
        for image_id in step.doomed:
            self._delete_image(image_id)

        def surviving_parent(record: Optional[SnapshotRecord]) -> Optional[SnapshotRecord]:
            while record is not None and record.id in doomed:
                record = by_id.get(record.parent_id or '')
            return record

        for record in records:
            if record.id not in doomed and record.parent_id in doomed and owned(images[record.id]):
                parent = surviving_parent(by_id.get(record.parent_id or ''))
                self._patch_image(images[record.id], {P_PARENT: parent.id if parent else ''})
        if current is not None and current.id in doomed:
            parent = surviving_parent(current)
            self._set_current(server.id, parent.id if parent else '', server_image_id(server))
        op.finish()

    def _abandon(self, op: Operation) -> List[str]:
        """Remove what an unfinished create left, so no half-made restore point is listed later; returns the
        include_volumes snapshots that could not be deleted (and says so in the operation's error)."""
        step: CreateStep = op.handle
        left = self._delete_volume_snapshots(step.volume_snapshots)
        if left and op.error is not None:
            op.error.msg += '; the volume snapshot(s) %s could not be deleted: remove by hand' % ', '.join(left)
            op.error.args = (op.error.msg,)
        self._put_pointer_back(op, step)
        try:
            image = self._image(step.image_id)
            if image is None:
                return left
            for sid in bdm_snapshot_ids(image):
                self.conn.block_storage.delete_snapshot(sid, ignore_missing=True)
            self.conn.image.delete_image(step.image_id, ignore_missing=True)
        except Exception:  # best effort: the error already reported is the one that matters
            return left
        if op.error is not None:
            op.error.msg += '; the unfinished snapshot image %s was deleted' % step.image_id
            op.error.args = (op.error.msg,)
        return left

    def _put_pointer_back(self, op: Operation, step: CreateStep) -> None:
        """A failed create leaves the server's current snapshot what it was (the pointer moved at its first
        poll); a failure to do so is added to the operation's error, never raised over it."""
        if not step.pointer_moved:
            return
        try:
            self._put_back_current(step.server_id, step.previous_current)
            step.pointer_moved = False
        except SavepointError as exc:
            step.pointer_problem = ('the current snapshot of server %s could not be put back (metadata %s): %s'
                                    % (step.server_id, M_CURRENT, exc.msg))
            if op.error is not None:
                op.error.msg += '; ' + step.pointer_problem
                op.error.args = (op.error.msg,)

    def wait(self, operations: List[Operation], policy: WaitPolicy,
             progress: Optional[ProgressCallback] = None, until_first: bool = False) -> None:
        try:
            super().wait(operations, policy, progress, until_first)  # type: ignore[misc]
        except WaitTimeoutError as exc:
            abandoned: List[str] = []
            left: List[str] = []
            problems: List[str] = []
            for op in operations:
                for part in op.chain():
                    if not part.done and isinstance(part.handle, CreateStep):
                        left.extend(self._abandon(part))
                        abandoned.append(part.handle.image_id)
                        if part.handle.pointer_problem:
                            problems.append(part.handle.pointer_problem)
            if abandoned:
                exc.msg += ('; the unfinished snapshot %s %s %s deleted, so no half-made restore point remains'
                            % (plural(abandoned, 'image', 'images'), ', '.join(abandoned),
                               plural(abandoned, 'was', 'were')))
                exc.args = (exc.msg,)
            if left:
                exc.msg += '; its volume snapshot(s) %s could not be deleted: remove by hand' % ', '.join(left)
                exc.args = (exc.msg,)
            if problems:
                exc.msg += '; ' + '; '.join(problems)
                exc.args = (exc.msg,)
            raise

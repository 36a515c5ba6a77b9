# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStackBackend: the engine's contract, composed of the parts of this package.

connection.py (session, options, auth), images.py (Glance properties and records),
volumes.py (include_volumes), rebuild.py (revert), steps.py (typed steps, polling).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

from ..._backend import SnapshotBackend, pick_one
from ..._errors import GuestNotFoundError, InvalidRequestError, SavepointError, SnapshotNotFoundError, \
    UnsupportedError
from ..._model import Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec, descendants
from ..._waiting import Operation
from .connection import CONNECTION_OPTIONS, SessionMixin, Settings, _bool, secret_values
from .errors import load_openstacksdk
from .lease import LeaseMixin
from .images import (
    CREATE_KEYS, MAX_VALUE, current_pointer, P_BASE, P_CREATED_BY, P_DESCRIPTION, P_EXPIRES, P_INCLUDE_VOLUMES, P_NAME, P_OWNER,
    P_PARENT, P_POWER, P_SERVER, P_VOLUME_SNAPSHOTS, POWER, ImagesMixin, bdm_snapshot_ids, included_snapshot_ids,
    owned, server_image_id,
)
from .rebuild import BFV_REASON, REIMAGE_MICROVERSION, RebuildMixin
from .steps import CreateStep, DeleteStep, StepsMixin
from .volumes import VolumesMixin

_UUID_RE = re.compile(r'^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')


class OpenStackBackend(SessionMixin, ImagesMixin, VolumesMixin, RebuildMixin, StepsMixin, LeaseMixin,
                       SnapshotBackend):
    provider = 'openstack'
    #: uuid is the server id too (Nova server ids are UUIDs): users coming from other providers write uuid
    guest_fields = ('name', 'uuid', 'id')
    guest_options = ('server_id',)
    connection_options = CONNECTION_OPTIONS
    #: provider-only create options (argument spec entries; they land in SnapshotSpec.options)
    spec_options = {
        'include_volumes': {'type': 'bool', 'default': False},
    }

    def __init__(self, connection: Dict[str, Any]) -> None:
        super().__init__(connection)
        load_openstacksdk()
        self.settings = Settings(self.connection)
        self.conn: Any = None
        self.where = ''
        self._compute_max = None
        self._volume_max = None

    @classmethod
    def secret_values(cls, connection: Dict[str, Any]) -> List[str]:
        """Secrets inside a ``cloud`` dict (its auth password, tokens), for the module layer's no_log list:
        a dict option cannot mark single keys no_log the way ``auth`` does."""
        return secret_values(connection.get('cloud'))

    @property
    def validate_certs(self) -> Any:
        return self.settings.validate_certs

    @property
    def bfv_revert(self) -> str:
        return self.settings.bfv_revert

    # -- guests ----------------------------------------------------------------
    @staticmethod
    def _guest(server: Any) -> Guest:
        return Guest(id=server.id, name=server.name, power_state=POWER.get(server.status, 'unknown'), handle=server)

    def find_guest(self, ref: GuestRef) -> Guest:
        if ref.folder:
            raise InvalidRequestError('OpenStack servers have no folders: name them by name, server_id or uuid')
        server_id = ref.id or ref.uuid
        if server_id:
            try:
                return self._guest(self._server(server_id))
            except GuestNotFoundError:
                raise GuestNotFoundError('openstack server with id %s not found in %s' % (server_id, self._where()))
        name = ref.name or ''
        if _UUID_RE.match(name):
            try:
                return self._guest(self._server(name))
            except GuestNotFoundError:
                pass
        servers = self._call(lambda: list(self.conn.compute.servers(name='^%s$' % re.escape(name))),
                             "looking up server '%s'" % name, GuestNotFoundError)
        matches = [self._guest(s) for s in servers if s.name == name]
        if not matches:
            raise GuestNotFoundError("openstack server '%s' not found in %s (project %s)"
                                     % (name, self._where(), self.conn.current_project_id))
        return pick_one(matches, ref, self.provider)

    def list_guests(self) -> List[Guest]:
        return [self._guest(s) for s in self._call(lambda: list(self.conn.compute.servers()), 'listing servers')]

    @staticmethod
    def _boot_from_volume(server: Any) -> bool:
        return not server_image_id(server)

    # -- capabilities ------------------------------------------------------------
    def capabilities(self, guest: Guest) -> Capabilities:
        server = guest.handle
        caps = Capabilities(memory=False, quiesce=False, internal=True, external=False, revert=True,
                            revert_external=False, delete_children=True)
        reasons = caps.reasons
        reasons['memory'] = ('OpenStack server snapshots (Nova createImage) hold the disk only, never the '
                             'memory: use memory: false or leave it unset')
        reasons['quiesce'] = ('this collection does not quiesce OpenStack servers (Nova does it on its own only '
                              'for images with hw_qemu_guest_agent=yes and a running agent)')
        reasons['external'] = 'OpenStack snapshots are images, kind: internal only'
        if self._boot_from_volume(server) and self.bfv_revert != 'reimage':
            caps.revert = False
            reasons['revert'] = BFV_REASON % guest.name
        elif self._boot_from_volume(server) and self._compute_microversion() < (2, 93):
            caps.revert = False
            reasons['revert'] = ("server '%s' boots from volume: re-imaging its root volume needs compute API "
                                 "microversion %s, this cloud offers at most %d.%d"
                                 % ((guest.name, REIMAGE_MICROVERSION) + self._compute_microversion()))
        elif server.status not in ('ACTIVE', 'SHUTOFF'):
            caps.revert = False
            reasons['revert'] = ("server '%s' is %s: Nova rebuilds only ACTIVE or SHUTOFF servers; bring it to "
                                 "one of those states first" % (guest.name, server.status))
        elif getattr(server, 'task_state', None):
            caps.revert = False
            reasons['revert'] = ("server '%s' is busy (task state %s); wait until Nova has finished it"
                                 % (guest.name, server.task_state))
        return caps

    def prepare_spec(self, guest: Guest, spec: SnapshotSpec, warnings: List[str]) -> SnapshotSpec:
        for what, value in (('snapshot_name', spec.name), ('description', spec.description)):
            if len(value or '') > MAX_VALUE:
                raise InvalidRequestError('%s is %d characters long; OpenStack image properties hold at most %d'
                                          % (what, len(value), MAX_VALUE))
        options = dict(spec.options or {})
        options['include_volumes'] = _bool(options.get('include_volumes') or False, 'include_volumes')
        if options['include_volumes']:
            self._check_include_volumes(guest)
        return SnapshotSpec(**dict(spec.__dict__, memory=False, quiesce='never', options=options))

    def option_conflicts(self, existing: SnapshotRecord, spec: SnapshotSpec) -> List[str]:
        want = _bool((spec.options or {}).get('include_volumes') or False, 'include_volumes')
        have = bool((existing.provider_details or {}).get('include_volumes'))
        if want == have:
            return []
        if want:
            return ['include_volumes: true, but the existing snapshot holds no snapshots of the data volumes '
                    '(it was taken without include_volumes)']
        return ['include_volumes: false, but the existing snapshot also holds snapshots of the data volumes '
                '(it was taken with include_volumes: true)']

    # -- snapshots ---------------------------------------------------------------
    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        return self._records(self._server(guest.id))[0]

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        server = self._server(guest.id)
        records, _images = self._records(server)
        current = next((r for r in records if r.current), None)
        marker_data = spec.marker.to_dict() if spec.marker is not None else {}
        properties = {key: '' for key in CREATE_KEYS}
        properties.update({
            P_SERVER: server.id, P_NAME: spec.name, P_PARENT: current.id if current else '',
            P_POWER: POWER.get(server.status, 'unknown'), P_DESCRIPTION: spec.description or '',
            P_OWNER: marker_data.get('owner') or '', P_CREATED_BY: marker_data.get('created_by') or '',
            P_EXPIRES: marker_data.get('expires_at') or '', P_BASE: server_image_id(server),
        })
        included: List[str] = []
        if (spec.options or {}).get('include_volumes'):
            # Checked again here: the server may have changed since the decide phase.
            self._check_include_volumes(self._guest(server))
            included = self._snapshot_volumes(guest, server, spec, marker_data)
            properties[P_INCLUDE_VOLUMES] = 'true'
            properties[P_VOLUME_SNAPSHOTS] = ','.join(included)
        try:
            # Server.create_image, not the proxy's create_server_image: that one reads the image back
            # through the cloud layer (one more call); the first poll reads it anyway.
            image_id = self._call(lambda: server.create_image(self.conn.compute, spec.name, properties),
                                  "creating snapshot '%s' of server '%s'" % (spec.name, guest.name),
                                  GuestNotFoundError)
        except SavepointError as exc:
            self._drop_volume_snapshots(included, exc)
            raise
        op = Operation(action='create', guest=guest, snapshot_name=spec.name, id=image_id,
                       handle=CreateStep(image_id=image_id, server_id=server.id, volume_snapshots=included,
                                         base=server_image_id(server), parent=current,
                                         previous_current=current_pointer(server)))
        # Nova does not report how long the guest was blocked (live snapshots on libvirt are not paused).
        op.blocked_seconds = None
        if not server_image_id(server):
            # Boot from volume: createImage returns once the image is active. Finish now, so that the
            # snapshot is marked as this collection's (and current) even when the task does not wait.
            self._poll_create(op, op.handle)
        return op

    def prepare_revert(self, guest: Guest, snapshot: SnapshotRecord) -> None:
        if not (snapshot.provider_details or {}).get('include_volumes'):
            return
        image = self._image(snapshot.id)
        if image is not None:
            self._volume_revert_plan(guest, snapshot, image)

    def start_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Operation:
        server = self._server(guest.id)
        caps = self.capabilities(self._guest(server))
        if not caps.revert:
            raise UnsupportedError(caps.reasons['revert'])
        image = self._image(snapshot.id)
        if image is None or server.id not in (image.get('instance_uuid'), image.get(P_SERVER) if owned(image) else None):
            raise SnapshotNotFoundError("snapshot '%s' (image %s) of server '%s' is gone"
                                        % (snapshot.name, snapshot.id, guest.name))
        if image.get('status') != 'active':
            raise UnsupportedError("snapshot '%s' (image %s) is %s, not active: it cannot be reverted to"
                                   % (snapshot.name, snapshot.id, image.get('status')))
        if self._boot_from_volume(server):
            return self._start_reimage(guest, server, snapshot, image, power_state)
        return self._start_rebuild(guest, server, snapshot, self._volume_revert_plan(guest, snapshot, image),
                                   power_state)

    def start_delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> Operation:
        server = self._server(guest.id)
        records, images = self._records(server)
        op = Operation(action='delete', guest=guest, snapshot_name=snapshot.name, id=snapshot.id)
        target = next((r for r in records if r.id == snapshot.id), None)
        if target is None:
            op.finish()
            return op
        doomed = [target] + (descendants(records, target) if remove_children else [])
        volume_snapshots = [sid for r in doomed
                            for sid in bdm_snapshot_ids(images[r.id]) + included_snapshot_ids(images[r.id])]
        # Pitfall: the volume snapshots of a boot-from-volume image go first (a root volume with snapshots
        # cannot be deleted with its server); the image only once they are gone, so a failure can be retried.
        for sid in volume_snapshots:
            self._call(lambda sid=sid: self.conn.block_storage.delete_snapshot(sid, ignore_missing=True),
                       "deleting volume snapshot %s of snapshot '%s'" % (sid, snapshot.name))
        step = DeleteStep(server_id=server.id, doomed=[r.id for r in doomed], volume_snapshots=volume_snapshots)
        op.handle = step
        if not volume_snapshots:
            self._finish_delete(op, step)
        return op

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revert = rebuild of the server from the snapshot image (same server id and ports), then the
power state is enforced.

Boot-from-volume servers: on nova 34 a rebuild onto a volume-backed snapshot image fails (nova
waits 0 s for the volume re-image of a 0-byte image), so the root volume is re-imaged through a
1-byte carrier image naming the snapshot's Cinder snapshot (docs/openstack.md).
"""

from __future__ import annotations

import io
import json
from typing import Any, Dict, List, Optional, Tuple

from ..._errors import GuestNotFoundError, ProviderError, SavepointError, UnsupportedError
from ..._model import Guest, SnapshotRecord
from ..._waiting import Operation
from . import errors
from .connection import attached_volume_ids
from .images import P_CARRIER, POWER, block_device_mapping, server_image_id
from .steps import PowerStep, RebuildStep, ReimageStep
from .volumes import plural

#: compute microversion that can rebuild (re-image) a volume-backed server onto another image
REIMAGE_MICROVERSION = '2.93'
BFV_REASON = ("server '%s' boots from volume: reverting it re-images its root volume from the snapshot's Cinder "
              "snapshot, which is off by default (boot_from_volume_revert: refuse) because Nova gives that "
              "re-image only reimage_timeout_per_gb seconds (20 by default) before it puts the server in ERROR; "
              "set boot_from_volume_revert: reimage to allow it -- see docs/openstack.md")


class RebuildMixin:
    """The write side of a revert: rebuild, re-image through a carrier, power actions afterwards."""

    conn: Any

    def _start_rebuild(self, guest: Guest, server: Any, snapshot: SnapshotRecord,
                       volumes: List[Tuple[str, str]], power_state: str) -> Operation:
        # Data volumes first (they are detached, so independent of the rebuild), then the server.
        reverted = self._revert_volumes(snapshot, volumes)
        doing = "rebuilding server '%s' from snapshot '%s' (image %s)" % (guest.name, snapshot.name, snapshot.id)
        try:
            self._call(lambda: self.conn.compute.rebuild_server(server, image=snapshot.id), doing, GuestNotFoundError)
        except SavepointError as exc:
            if reverted:
                exc.msg += ('; the data %s %s %s being reverted, but the server was not rebuilt'
                            % (plural(reverted, 'volume', 'volumes'), ', '.join(reverted),
                               plural(reverted, 'is', 'are')))
                exc.args = (exc.msg,)
            raise
        op = Operation(action='revert', guest=guest, snapshot_name=snapshot.name, id=snapshot.id,
                       handle=RebuildStep(image_id=snapshot.id, server_id=server.id, volumes=list(volumes)))
        op.follow_up = lambda: self._after_revert(guest, snapshot, power_state)
        return op

    def _start_reimage(self, guest: Guest, server: Any, snapshot: SnapshotRecord, image: Dict[str, Any],
                       power_state: str) -> Operation:
        """Boot from volume: rebuild (>= 2.93) onto a 1-byte carrier image that names the snapshot's Cinder
        snapshot of the root volume; Cinder then copies that snapshot onto the root volume.

        Nova waits reimage_timeout_per_gb x ceil(image size in GiB) for the re-image: 0 s for the 0-byte
        snapshot image itself (a rebuild onto it always fails on nova 34), one unit for the carrier.
        """
        bdms = block_device_mapping(image)
        root = [m for m in bdms if m.get('source_type') == 'snapshot' and str(m.get('boot_index')) == '0'
                and m.get('snapshot_id')]
        others = [m for m in bdms if m not in root and m.get('snapshot_id')]
        name = "snapshot '%s' of server '%s'" % (snapshot.name, guest.name)
        if len(root) != 1:
            raise UnsupportedError('%s names no Cinder snapshot of a root volume in its block_device_mapping: '
                                   'it cannot be reverted to' % name)
        if others:
            raise UnsupportedError('%s also holds Cinder snapshots of %d other volume(s) (%s); a rebuild re-images '
                                   'only the root volume, so this revert would be partial and is refused'
                                   % (name, len(others), ', '.join(m['snapshot_id'] for m in others)))
        volume_snapshot = self._call(lambda: self.conn.block_storage.get_snapshot(root[0]['snapshot_id']),
                                     'reading Cinder snapshot %s of %s' % (root[0]['snapshot_id'], name))
        if volume_snapshot.status != 'available':
            raise UnsupportedError('Cinder snapshot %s of %s is %s, not available'
                                   % (volume_snapshot.id, name, volume_snapshot.status))
        root_volume = volume_snapshot.volume_id
        if root_volume not in attached_volume_ids(server):
            raise UnsupportedError('%s was taken of volume %s, which is no longer attached to the server'
                                   % (name, root_volume))
        mappings = image.get('block_device_mapping')
        carrier_props = {
            'block_device_mapping': mappings if isinstance(mappings, str) else json.dumps(bdms),
            'bdm_v2': 'True', P_CARRIER: snapshot.id,
        }
        if image.get('root_device_name'):
            carrier_props['root_device_name'] = image['root_device_name']

        def make_carrier() -> Any:
            return self.conn.image.create_image(
                name='savepoint-restore-%s' % snapshot.id, disk_format='raw', container_format='bare',
                visibility='private', min_disk=int(image.get('min_disk') or 0), data=io.BytesIO(b'\0'),
                **carrier_props)
        carrier = self._call(make_carrier, 'creating the restore image for %s' % name)
        step = ReimageStep(image_id=snapshot.id, server_id=server.id, root_volume=root_volume, carrier=carrier.id)
        op = Operation(action='revert', guest=guest, snapshot_name=snapshot.name, id=snapshot.id, handle=step)

        def rebuild() -> None:
            # The SDK's rebuild_server negotiates its own microversion; the re-image needs 2.93 exactly named.
            response = self.conn.compute.post('/servers/%s/action' % server.id,
                                              json={'rebuild': {'imageRef': carrier.id}},
                                              microversion=REIMAGE_MICROVERSION)
            errors.os_exc.raise_from_response(response)
        try:
            self._call(rebuild, "rebuilding server '%s' (boot from volume) from %s" % (guest.name, name),
                       GuestNotFoundError)
        except SavepointError:
            self._drop_carrier(step)
            raise
        op.follow_up = lambda: self._after_revert(guest, snapshot, power_state)
        return op

    def _drop_carrier(self, step: ReimageStep) -> None:
        carrier, step.carrier = step.carrier, None
        if carrier:
            try:
                self.conn.image.delete_image(carrier, ignore_missing=True)
            except Exception:  # a leftover carrier is named savepoint-restore-<id>, harmless and findable
                pass

    def _after_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Optional[Operation]:
        # The server now runs the snapshot image (boot from volume: no image at all).
        self._set_current(guest.id, snapshot.id, server_image_id(self._server(guest.id)))
        want = {'on': 'running', 'off': 'off'}.get(power_state, snapshot.power_state)
        if want == 'unknown':
            # A snapshot this collection did not take records no power state: the server stays as Nova left it.
            return None
        return self._power_step(guest, snapshot, want)

    def _power_step(self, guest: Guest, snapshot: SnapshotRecord, want: str) -> Optional[Operation]:
        """One Nova power action towards ``want``; its follow-up takes the next one (off -> running -> paused)."""
        server = self._server(guest.id)
        have = POWER.get(server.status, 'unknown')
        if have == want:
            return None
        compute = self.conn.compute
        if want == 'off':
            action, then = compute.stop_server, 'SHUTOFF'
        elif have == 'off':
            action, then = compute.start_server, 'ACTIVE'
        elif have == 'paused':
            action, then = compute.unpause_server, 'ACTIVE'
        elif have == 'suspended':
            action, then = compute.resume_server, 'ACTIVE'
        elif have == 'running' and want == 'paused':
            action, then = compute.pause_server, 'PAUSED'
        elif have == 'running' and want == 'suspended':
            action, then = compute.suspend_server, 'SUSPENDED'
        else:
            raise ProviderError("server '%s' is %s (status %s) after the revert and cannot be made %s"
                                % (guest.name, have, server.status, want))
        self._call(lambda: action(server), "making server '%s' %s after the revert" % (guest.name, want),
                   GuestNotFoundError)
        op = Operation(action='revert', guest=guest, snapshot_name=snapshot.name, id=server.id,
                       handle=PowerStep(server_id=server.id, want=then))
        if POWER[then] != want:
            op.follow_up = lambda: self._power_step(guest, snapshot, want)
        return op

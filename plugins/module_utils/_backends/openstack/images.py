# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot images in Glance: the properties this collection writes, which images are its own,
and the records the engine sees.

Images are read and listed through openstacksdk (its pagination, its Image
resource) and flattened into plain dicts with the custom properties as
top-level keys, as Glance itself returns them; properties are written with
``update_image_properties``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from ..._errors import GuestNotFoundError, SnapshotNotFoundError
from ..._model import Marker, SnapshotRecord, from_iso, to_iso

PREFIX = 'savepoint_'
#: every key createImage is given, so that nothing is inherited from the server's base image. With
#: include_volumes, P_INCLUDE_VOLUMES is 'true' when the restore point was asked to hold the server's data
#: volumes and P_VOLUME_SNAPSHOTS the Cinder snapshot ids (comma-separated) of those volumes in it.
CREATE_KEYS = tuple(PREFIX + key for key in (
    'server_id', 'snapshot_name', 'parent_id', 'power_state', 'description', 'owner', 'created_by', 'expires_at',
    'image_id', 'base_image', 'include_volumes', 'volume_snapshots'))
(P_SERVER, P_NAME, P_PARENT, P_POWER, P_DESCRIPTION, P_OWNER, P_CREATED_BY, P_EXPIRES, P_SELF, P_BASE,
 P_INCLUDE_VOLUMES, P_VOLUME_SNAPSHOTS) = CREATE_KEYS
#: boot from volume: the 1-byte carrier image of a re-image names the snapshot it restores
P_CARRIER = PREFIX + 'restore_carrier_for'
M_CURRENT = PREFIX + 'current'
M_CURRENT_BASE = PREFIX + 'current_base'

#: Nova (image and server) metadata values are at most 255 characters.
MAX_VALUE = 255
#: server status -> engine power state
POWER = {'ACTIVE': 'running', 'SHUTOFF': 'off', 'PAUSED': 'paused', 'SUSPENDED': 'suspended'}
#: image statuses that are no restore point (never listed)
GONE = ('killed', 'deleted', 'pending_delete')

_IMAGE_CLASS: Any = None


def image_resource() -> Any:
    """openstacksdk's Image, able to send the property filters Glance takes (instance_uuid and ours).

    The SDK's own Image lists only its known query parameters and filters the others on the client
    (or drops them), which would page through every image of the project.
    """
    global _IMAGE_CLASS  # pylint: disable=global-statement
    if _IMAGE_CLASS is None:
        from openstack import resource
        from openstack.image.v2 import image as sdk_image

        class PropertyFilteredImage(sdk_image.Image):  # pylint: disable=too-many-ancestors
            _query_mapping = resource.QueryParameters(
                *sdk_image.Image._query_mapping._mapping.keys(),  # pylint: disable=protected-access
                'instance_uuid', P_SERVER)
        _IMAGE_CLASS = PropertyFilteredImage
    return _IMAGE_CLASS


def flat(image: Any) -> Dict[str, Any]:
    """An SDK Image as Glance's JSON: custom properties (ours, instance_uuid, block_device_mapping) top-level."""
    data = image.to_dict(headers=False, computed=False, original_names=True)
    properties = data.pop('properties', None) or {}
    for key, value in properties.items():
        data.setdefault(key, value)
    return data


def server_image_id(server: Any) -> str:
    image = getattr(server, 'image', None)
    if image is None:
        return ''
    if isinstance(image, dict):
        return image.get('id') or ''
    return getattr(image, 'id', None) or ''


def current_pointer(server: Any) -> Dict[str, str]:
    """The server's current-snapshot pointer (metadata keys and values, '' for a key it lacks)."""
    metadata = getattr(server, 'metadata', None) or {}
    return {key: metadata.get(key) or '' for key in (M_CURRENT, M_CURRENT_BASE)}


def bdm_snapshot_ids(image: Dict[str, Any]) -> List[str]:
    """Cinder snapshots a volume-backed snapshot image refers to (its block_device_mapping)."""
    return [m['snapshot_id'] for m in block_device_mapping(image) if m.get('snapshot_id')]


def block_device_mapping(image: Dict[str, Any]) -> List[Dict[str, Any]]:
    bdm = image.get('block_device_mapping') or []
    if isinstance(bdm, str):
        try:
            bdm = json.loads(bdm)
        except ValueError:
            return []
    return [m for m in bdm if isinstance(m, dict)] if isinstance(bdm, list) else []


def included_snapshot_ids(image: Dict[str, Any]) -> List[str]:
    """Cinder snapshots of the data volumes an include_volumes restore point holds (owned images only)."""
    if not owned(image):
        return []
    return [sid for sid in (image.get(P_VOLUME_SNAPSHOTS) or '').split(',') if sid]


def owned(image: Dict[str, Any]) -> bool:
    """Written by this collection (not a property set inherited from a base image).

    Finished: ``savepoint_image_id`` is the image's own id. Not finished yet (still uploading, or
    taken with ``wait: false``): an image-backed snapshot whose ``savepoint_base_image`` is the
    ``base_image_ref`` Nova gave it -- an inherited copy has the id of the snapshot it inherited
    from as ``base_image_ref``, which cannot be that snapshot's own base.
    """
    marked = image.get(P_SELF)
    if marked:
        return marked == image.get('id')
    base = image.get(P_BASE)
    return bool(base) and base == image.get('base_image_ref') and image.get(P_SERVER) == image.get('instance_uuid')


class ImagesMixin:
    """Glance reads and writes of the backend, and the snapshot records built from them."""

    conn: Any

    def _image(self, image_id: str) -> Optional[Dict[str, Any]]:
        resource = self._image_resource(image_id)
        return None if resource is None else flat(resource)

    def _image_resource(self, image_id: str) -> Any:
        """The SDK Image as Glance has it now, or None when it is gone (a write needs the resource)."""
        try:
            return self._call(lambda: self.conn.image.get_image(image_id), 'reading image %s' % image_id)
        except SnapshotNotFoundError:
            return None

    def _mark_own(self, resource: Any) -> Dict[str, Any]:
        """Write ``savepoint_image_id`` = the image's own id, patched against the image as just read (one
        call, no second read); returns the image as Glance answered the write."""
        self._call(lambda: self.conn.image.update_image_properties(resource, meta={P_SELF: resource.id}),
                   'updating image %s' % resource.id)
        return flat(resource)  # the SDK refreshed the resource from Glance's answer to the PATCH

    def _images(self, **query: str) -> List[Dict[str, Any]]:
        cls = image_resource()
        return self._call(lambda: [flat(i) for i in cls.list(self.conn.image, limit=200, **query)], 'listing images')

    def _patch_image(self, image: Dict[str, Any], values: Dict[str, str]) -> None:
        def update() -> None:
            # The SDK computes the JSON patch against the image as read now (it needs its properties);
            # meta= skips its type conversion: these are strings already, '' included.
            self.conn.image.update_image_properties(self.conn.image.get_image(image['id']), meta=dict(values))
        self._call(update, 'updating image %s' % image['id'])

    def _server_images(self, server: Any) -> List[Dict[str, Any]]:
        """This server's snapshot images: createImage of the server itself (instance_uuid), plus
        boot-from-volume ones this collection made (they have no instance_uuid)."""
        by_id: Dict[str, Dict[str, Any]] = {}
        for image in self._images(instance_uuid=server.id):
            by_id[image['id']] = image
        for image in self._images(**{P_SERVER: server.id}):
            if owned(image) and image.get(P_SELF):
                by_id[image['id']] = image
        return [i for i in by_id.values() if i.get('status') not in GONE]

    def _record(self, image: Dict[str, Any]) -> SnapshotRecord:
        mine = owned(image)
        get = (lambda key: image.get(key) or None) if mine else (lambda key: None)
        size = image.get('size')
        bfv_snaps = bdm_snapshot_ids(image)
        included = included_snapshot_ids(image)
        volumes = [self._volume_snapshot_info(sid) for sid in included]
        record = SnapshotRecord(
            name=get(P_NAME) or image.get('name') or image['id'], id=image['id'],
            parent_id=get(P_PARENT),
            created_at=to_iso(from_iso(image.get('created_at'))),
            power_state=get(P_POWER) or 'unknown', memory=False, quiesced=None, kind='internal',
            size_bytes=int(size) if size is not None and not bfv_snaps and image.get('status') == 'active' else None,
            description=get(P_DESCRIPTION) or '',
            provider_details={'image_id': image['id'], 'image_name': image.get('name'),
                              'status': image.get('status'), 'boot_from_volume': bool(bfv_snaps),
                              'volume_snapshots': bfv_snaps + included,
                              'include_volumes': mine and image.get(P_INCLUDE_VOLUMES) == 'true',
                              'volumes': volumes,
                              'volumes_size_bytes': sum(v['size_bytes'] or 0 for v in volumes)},
        )
        if get(P_OWNER):
            record.apply_marker(Marker(owner=get(P_OWNER), created_by=get(P_CREATED_BY) or '',
                                       expires_at=from_iso(get(P_EXPIRES))))
        return record

    def _records(self, server: Any) -> Tuple[List[SnapshotRecord], Dict[str, Dict[str, Any]]]:
        images = {i['id']: i for i in self._server_images(server)}
        records = sorted((self._record(i) for i in images.values()), key=lambda r: (r.created_at or '', r.name))
        by_id = {r.id: r for r in records}
        for record in records:
            parent = by_id.get(record.parent_id or '')
            if parent is None:
                record.parent_id = None
            else:
                record.parent = parent.name
                parent.children.append(record.name)
        current = self._current_id(server, by_id)
        for record in records:
            record.current = record.id == current
        return records, images

    @staticmethod
    def _current_id(server: Any, by_id: Dict[str, SnapshotRecord]) -> Optional[str]:
        metadata = getattr(server, 'metadata', None) or {}
        base = server_image_id(server)
        marked = metadata.get(M_CURRENT)
        if marked in by_id and metadata.get(M_CURRENT_BASE, '') == base:
            return marked
        return base if base in by_id else None

    def _set_current(self, server_id: str, image_id: str, base: str) -> None:
        self._call(lambda: self.conn.compute.set_server_metadata(server_id, **{M_CURRENT: image_id,
                                                                               M_CURRENT_BASE: base}),
                   'recording the current snapshot in the metadata of server %s' % server_id, GuestNotFoundError)

    def _put_back_current(self, server_id: str, previous: Dict[str, str]) -> None:
        """The server's current-snapshot pointer as it was before a create moved it (keys it did not have
        are removed again)."""
        kept = {key: value for key, value in previous.items() if value}
        doing = 'putting back the current snapshot in the metadata of server %s' % server_id
        if kept:
            self._call(lambda: self.conn.compute.set_server_metadata(server_id, **kept), doing, GuestNotFoundError)
        gone = [key for key in (M_CURRENT, M_CURRENT_BASE) if key not in kept]
        if gone:
            self._call(lambda: self.conn.compute.delete_server_metadata(server_id, gone), doing, GuestNotFoundError)

    def _delete_image(self, image_id: str) -> None:
        self._call(lambda: self.conn.image.delete_image(image_id, ignore_missing=True),
                   'deleting snapshot image %s' % image_id)

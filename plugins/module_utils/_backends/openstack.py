# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStack backend (openstacksdk): server snapshots as Glance images, revert by rebuild.

A restore point is the image Nova's createImage makes of a server. It carries
image properties written by this collection:

``savepoint_server_id``, ``savepoint_snapshot_name``, ``savepoint_parent_id``,
``savepoint_power_state``, ``savepoint_description``, ``savepoint_owner``,
``savepoint_created_by``, ``savepoint_expires_at`` and, written once the image
is active, ``savepoint_image_id`` = the image's own id.

Nova copies every property of a server's base image into each new snapshot,
so a server rebuilt from one of these images hands the same keys down to later
snapshots taken by hand. Only an image whose ``savepoint_image_id`` is its own
id is therefore read as made by this collection; any other image of the
server is listed as it is, without owner, expiry or parent.

Which snapshot is current is kept in the server's metadata
(``savepoint_current`` = image id, ``savepoint_current_base`` = the server's
image at that moment): a snapshot is current when it was the last one this
collection created or reverted to and the server has not been rebuilt since;
otherwise the snapshot the server's image is, if any.

Revert = rebuild of the server from the snapshot image (same server id and
ports), then the power state is enforced. Boot-from-volume servers are
refused up front unless ``boot_from_volume_revert: reimage``: on nova 34 a
rebuild onto a volume-backed snapshot image fails (nova waits 0 s for the
volume re-image of a 0-byte image), so the root volume is re-imaged through a
1-byte carrier image naming the snapshot's Cinder snapshot (see
``_start_reimage`` and docs/openstack.md).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

from .._backend import SnapshotBackend, pick_one
from .._errors import (
    AuthenticationError, CertificateError, ConnectionFailedError, GuestNotFoundError, InvalidRequestError,
    MissingLibraryError, ProviderError, SavepointError, SnapshotNotFoundError, UnsupportedError,
    WaitTimeoutError,
)
from .._model import (
    Capabilities, Guest, GuestRef, Marker, SnapshotRecord, SnapshotSpec, descendants, from_iso, to_iso,
)
from .._waiting import Operation, ProgressCallback, WaitPolicy

OPENSTACK_IMPORT_ERROR = None
openstack = os_exc = ksa_exc = None


def load_openstacksdk() -> bool:
    """Import openstacksdk on first use, not at module import: it takes about a third of a
    second, and the provider-neutral modules carry every backend."""
    global openstack, os_exc, ksa_exc, OPENSTACK_IMPORT_ERROR  # pylint: disable=global-statement
    if openstack is not None:
        return True
    try:
        import openstack as sdk
        from openstack import exceptions as sdk_exceptions
        from keystoneauth1 import exceptions as keystoneauth_exceptions
    except ImportError:
        OPENSTACK_IMPORT_ERROR = traceback.format_exc()
        return False
    openstack, os_exc, ksa_exc = sdk, sdk_exceptions, keystoneauth_exceptions
    return True


PREFIX = 'savepoint_'
P_SERVER = PREFIX + 'server_id'
P_NAME = PREFIX + 'snapshot_name'
P_PARENT = PREFIX + 'parent_id'
P_POWER = PREFIX + 'power_state'
P_DESCRIPTION = PREFIX + 'description'
P_OWNER = PREFIX + 'owner'
P_CREATED_BY = PREFIX + 'created_by'
P_EXPIRES = PREFIX + 'expires_at'
P_SELF = PREFIX + 'image_id'
P_BASE = PREFIX + 'base_image'
#: include_volumes: 'true' when the restore point was asked to hold the server's data volumes
P_INCLUDE_VOLUMES = PREFIX + 'include_volumes'
#: include_volumes: the Cinder snapshot ids (comma-separated) of the data volumes, in this restore point
P_VOLUME_SNAPSHOTS = PREFIX + 'volume_snapshots'
#: every key createImage is given, so that nothing is inherited from the server's base image
CREATE_KEYS = (P_SERVER, P_NAME, P_PARENT, P_POWER, P_DESCRIPTION, P_OWNER, P_CREATED_BY, P_EXPIRES, P_SELF, P_BASE,
               P_INCLUDE_VOLUMES, P_VOLUME_SNAPSHOTS)
M_CURRENT = PREFIX + 'current'
M_CURRENT_BASE = PREFIX + 'current_base'

#: Nova (image and server) metadata values are at most 255 characters.
MAX_VALUE = 255
#: server status -> engine power state
_POWER = {'ACTIVE': 'running', 'SHUTOFF': 'off', 'PAUSED': 'paused', 'SUSPENDED': 'suspended'}
_STATUS = {v: k for k, v in _POWER.items()}
#: image statuses that are no restore point (never listed)
_GONE = ('killed', 'deleted', 'pending_delete')
_JSON_PATCH = 'application/openstack-images-v2.1-json-patch'
_UUID_RE = re.compile(r'^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')
_BFV_REASON = ("server '%s' boots from volume: reverting it re-images its root volume from the snapshot's Cinder "
               "snapshot, which is off by default (boot_from_volume_revert: refuse) because Nova gives that "
               "re-image only reimage_timeout_per_gb seconds (20 by default) before it puts the server in ERROR; "
               "set boot_from_volume_revert: reimage to allow it -- see docs/openstack.md")
#: compute microversion that can rebuild (re-image) a volume-backed server onto another image
REIMAGE_MICROVERSION = '2.93'
#: volume microversion of Cinder's revert-to-snapshot (include_volumes)
VOLUME_REVERT_MICROVERSION = '3.40'
#: a Cinder snapshot id and its separator: at most 6 fit into one 255-character image property
MAX_VOLUMES = MAX_VALUE // 37
#: seconds a clean-up waits for volume snapshots still being created (Cinder deletes none while 'creating')
SETTLE_SECONDS = 30.0
P_CARRIER = PREFIX + 'restore_carrier_for'


def _chain(exc: BaseException) -> List[BaseException]:
    found, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _message(exc: BaseException) -> str:
    details = getattr(exc, 'details', None)
    if details and isinstance(details, str):
        return details
    return str(exc) or type(exc).__name__


def translate(exc: BaseException, doing: str, not_found: Any = SnapshotNotFoundError) -> SavepointError:
    """An openstacksdk / keystoneauth error as the engine's error, the service's message kept."""
    load_openstacksdk()
    if isinstance(exc, SavepointError):
        return exc
    chain = _chain(exc)
    if ksa_exc is not None:
        for item in chain:
            if isinstance(item, ksa_exc.SSLError):
                return CertificateError('%s: TLS with the OpenStack endpoint failed: %s' % (doing, item), str(item))
            if isinstance(item, (ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.UnknownConnectionError)):
                return ConnectionFailedError('%s: cannot reach the OpenStack endpoint: %s' % (doing, item), str(item))
            if isinstance(item, ksa_exc.Unauthorized):
                return AuthenticationError('%s: Keystone refused the credentials (HTTP 401): wrong user name, '
                                           'password, project or domain' % doing, str(item))
            if isinstance(item, ksa_exc.EndpointNotFound):
                return ConnectionFailedError('%s: the service catalog has no such endpoint: %s' % (doing, item),
                                             str(item))
            if isinstance(item, ksa_exc.MissingRequiredOptions):
                return InvalidRequestError('%s: incomplete OpenStack auth settings: %s' % (doing, item), str(item))
    message = _message(exc)
    status = getattr(exc, 'status_code', None)
    details = {'http_status': status} if status else {}
    if os_exc is not None:
        if isinstance(exc, os_exc.ConfigException):
            return ConnectionFailedError('%s: the OpenStack client configuration is unusable: %s' % (doing, message),
                                         message)
        if status == 401:
            return AuthenticationError('%s: the OpenStack session was refused (HTTP 401): %s' % (doing, message),
                                       message, details)
        if status == 404:
            return not_found('%s: not found: %s' % (doing, message), message, details)
        if status == 403:
            return ProviderError('%s: permission denied (HTTP 403): %s' % (doing, message), message, details)
        if isinstance(exc, os_exc.EndpointNotFound):
            return ConnectionFailedError('%s: %s' % (doing, message), message)
    if status:
        return ProviderError('%s failed (HTTP %s): %s' % (doing, status, message), message, details)
    return ProviderError('%s failed: %s' % (doing, message), message)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('1', 'true', 'yes', 'on', 'y', 't'):
        return True
    if text in ('0', 'false', 'no', 'off', 'n', 'f'):
        return False
    raise InvalidRequestError('%s must be true or false, not %r' % (name, value))


def _server_image_id(server: Any) -> str:
    image = getattr(server, 'image', None)
    if image is None:
        return ''
    if isinstance(image, dict):
        return image.get('id') or ''
    return getattr(image, 'id', None) or ''


def _bdm_snapshot_ids(image: Dict[str, Any]) -> List[str]:
    """Cinder snapshots a volume-backed snapshot image refers to (its block_device_mapping)."""
    bdm = image.get('block_device_mapping') or []
    if isinstance(bdm, str):
        try:
            bdm = json.loads(bdm)
        except ValueError:
            return []
    return [m['snapshot_id'] for m in bdm if isinstance(m, dict) and m.get('snapshot_id')]


def _included_snapshot_ids(image: Dict[str, Any]) -> List[str]:
    """Cinder snapshots of the data volumes an include_volumes restore point holds (owned images only)."""
    if not _owned(image):
        return []
    return [sid for sid in (image.get(P_VOLUME_SNAPSHOTS) or '').split(',') if sid]


def _cinder_time(value: Any) -> str:
    """Cinder's created_at to the second (its database keeps no more; "latest" is decided on it)."""
    text = str(value or '').replace('T', ' ')
    return text.split('.', maxsplit=1)[0].rstrip('Z').split('+', maxsplit=1)[0]


def _owned(image: Dict[str, Any]) -> bool:
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


class OpenStackBackend(SnapshotBackend):
    provider = 'openstack'
    guest_fields = ('name', 'id')
    guest_options = ('server_id',)
    connection_options = {
        'cloud': {'type': 'str', 'env': ['OS_CLOUD'],
                  'description': 'Named cloud in clouds.yaml (OS_CLIENT_CONFIG_FILE is honoured).'},
        'auth': {'type': 'dict', 'no_log': True,
                 'description': 'Auth settings of the auth plugin (auth_url, username, password, project_name, ...).'},
        'auth_type': {'type': 'str', 'description': 'Keystone auth plugin name, for example password or token.'},
        'region_name': {'type': 'str', 'description': 'Region of the cloud.'},
        'interface': {'type': 'str', 'default': 'public', 'choices': ['public', 'internal', 'admin'],
                      'aliases': ['endpoint_type'], 'description': 'Endpoint type to use from the catalog.'},
        # No default and no alias here: the neutral modules share this option with the VMware
        # provider; unset means true (resolved in __init__).
        'validate_certs': {'type': 'bool', 'description': 'Verify TLS certificates of the endpoints (default true).'},
        'ca_cert': {'type': 'str', 'aliases': ['cacert'], 'description': 'CA bundle to verify the endpoints with.'},
        'api_timeout': {'type': 'int', 'description': 'Seconds one API request may take.'},
        'boot_from_volume_revert': {'type': 'str', 'default': 'refuse', 'choices': ['refuse', 'reimage'],
                                    'description': 'Whether boot-from-volume servers may be reverted by a re-image '
                                                   'of their root volume.'},
    }
    #: provider-only create options (argument spec entries; they land in SnapshotSpec.options)
    spec_options = {
        'include_volumes': {'type': 'bool', 'default': False},
    }

    def __init__(self, connection: Dict[str, Any]) -> None:
        super().__init__(connection)
        load_openstacksdk()
        conn = self.connection
        self.cloud = conn.get('cloud') or os.environ.get('OS_CLOUD') or None
        self.auth = conn.get('auth') or None
        if self.auth is not None and not isinstance(self.auth, dict):
            raise InvalidRequestError('auth must be a dictionary of auth settings')
        self.interface = conn.get('interface') or 'public'
        validate = conn.get('validate_certs')
        self.validate_certs = True if validate is None else _bool(validate, 'validate_certs')
        timeout = conn.get('api_timeout')
        self.api_timeout = int(timeout) if timeout not in (None, '') else None
        self.bfv_revert = conn.get('boot_from_volume_revert') or 'refuse'
        if self.bfv_revert not in ('refuse', 'reimage'):
            raise InvalidRequestError('boot_from_volume_revert must be refuse or reimage, not %r' % (self.bfv_revert,))
        self.conn: Any = None
        self._compute_max: Optional[Tuple[int, int]] = None
        self._volume_max: Optional[Tuple[int, int]] = None

    # -- session -------------------------------------------------------------
    def _where(self) -> str:
        if self.cloud:
            return "cloud '%s'" % self.cloud
        url = (self.auth or {}).get('auth_url')
        return 'the cloud at %s' % url if url else 'the cloud from the OS_* environment'

    def connect(self) -> None:
        if not load_openstacksdk():
            raise MissingLibraryError('the openstack provider needs openstacksdk (pip install openstacksdk) where '
                                      'the module runs', provider_message=OPENSTACK_IMPORT_ERROR)
        # keystoneauth logs failed version discovery as a warning to stderr; the error is reported instead.
        logging.getLogger('keystoneauth').addHandler(logging.NullHandler())
        kwargs: Dict[str, Any] = {'interface': self.interface, 'verify': self.validate_certs}
        if self.cloud:
            kwargs['cloud'] = self.cloud
        if self.auth:
            kwargs['auth'] = dict(self.auth)
        for option, key in (('auth_type', 'auth_type'), ('region_name', 'region_name'), ('ca_cert', 'cacert')):
            if self.connection.get(option):
                kwargs[key] = self.connection[option]
        if self.api_timeout:
            kwargs['api_timeout'] = self.api_timeout
        doing = 'connecting to OpenStack %s' % self._where()
        try:
            self.conn = openstack.connect(**kwargs)
            self.conn.authorize()
        except Exception as exc:  # every sdk/keystoneauth failure becomes an engine error, never a traceback
            self.close()
            raise translate(exc, doing, ConnectionFailedError)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # closing must not hide the real error
                pass
            self.conn = None

    def _call(self, fn: Any, doing: str, not_found: Any = SnapshotNotFoundError) -> Any:
        try:
            return fn()
        except SavepointError:
            raise
        except Exception as exc:  # every sdk/keystoneauth failure becomes an engine error
            raise translate(exc, doing, not_found)

    # -- raw Glance v2 (custom properties are top-level keys of the image JSON) ----
    def _glance(self, method: str, path: str, doing: str, **kwargs: Any) -> Any:
        def run() -> Any:
            response = getattr(self.conn.image, method)(path, **kwargs)
            if response.status_code >= 400:
                os_exc.raise_from_response(response)
            return response
        return self._call(run, doing)

    def _image(self, image_id: str) -> Optional[Dict[str, Any]]:
        try:
            return self._glance('get', '/images/%s' % image_id, 'reading image %s' % image_id).json()
        except SnapshotNotFoundError:
            return None

    def _images(self, **query: str) -> List[Dict[str, Any]]:
        found: List[Dict[str, Any]] = []
        params = dict(query, limit=200)
        while True:
            body = self._glance('get', '/images', 'listing images', params=params).json()
            batch = body.get('images') or []
            found.extend(batch)
            if not body.get('next') or not batch:
                return found
            params['marker'] = batch[-1]['id']

    def _patch_image(self, image: Dict[str, Any], values: Dict[str, str]) -> None:
        ops = [{'op': 'replace' if key in image else 'add', 'path': '/%s' % key, 'value': value}
               for key, value in values.items()]
        self._glance('patch', '/images/%s' % image['id'], "updating image %s" % image['id'],
                     json=ops, headers={'Content-Type': _JSON_PATCH})

    # -- guests ----------------------------------------------------------------
    @staticmethod
    def _guest(server: Any) -> Guest:
        return Guest(id=server.id, name=server.name, power_state=_POWER.get(server.status, 'unknown'), handle=server)

    def _server(self, server_id: str) -> Any:
        return self._call(lambda: self.conn.compute.get_server(server_id), 'reading server %s' % server_id,
                          GuestNotFoundError)

    def find_guest(self, ref: GuestRef) -> Guest:
        if ref.uuid or ref.folder:
            raise InvalidRequestError('OpenStack servers are named by name or server_id (an id)')
        if ref.id:
            try:
                return self._guest(self._server(ref.id))
            except GuestNotFoundError:
                raise GuestNotFoundError('openstack server with id %s not found in %s' % (ref.id, self._where()))
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

    def refresh_guest(self, guest: Guest) -> Guest:
        return self._guest(self._server(guest.id))

    @staticmethod
    def _boot_from_volume(server: Any) -> bool:
        return not _server_image_id(server)

    # -- capabilities ------------------------------------------------------------
    def capabilities(self, guest: Guest) -> Capabilities:
        server = guest.handle
        caps = Capabilities(memory=False, quiesce=False, internal=True, external=False, revert=True,
                            revert_external=False, delete_children=True, concurrent=True)
        reasons = caps.reasons
        reasons['memory'] = ('OpenStack server snapshots (Nova createImage) hold the disk only, never the '
                             'memory: use memory: false or leave it unset')
        reasons['quiesce'] = ('this collection does not quiesce OpenStack servers (Nova does it on its own only '
                              'for images with hw_qemu_guest_agent=yes and a running agent)')
        reasons['external'] = 'OpenStack snapshots are images, kind: internal only'
        if self._boot_from_volume(server) and self.bfv_revert != 'reimage':
            caps.revert = False
            reasons['revert'] = _BFV_REASON % guest.name
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

    def _compute_microversion(self) -> Tuple[int, int]:
        if self._compute_max is None:
            def read() -> Tuple[int, int]:
                data = self.conn.compute.get_endpoint_data()
                found = getattr(data, 'max_microversion', None) or (2, 1)
                return int(found[0]), int(found[1])
            self._compute_max = self._call(read, 'reading the compute API version', ConnectionFailedError)
        return self._compute_max

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

    def _data_volumes(self, server: Any) -> List[str]:
        """Ids of the volumes attached to an image-backed server (all of them are data volumes)."""
        return [v['id'] if isinstance(v, dict) else v.id for v in server.attached_volumes or []]

    def _volume_microversion(self) -> Tuple[int, int]:
        if self._volume_max is None:
            def read() -> Tuple[int, int]:
                data = self.conn.block_storage.get_endpoint_data()
                found = getattr(data, 'max_microversion', None) or (3, 0)
                return int(found[0]), int(found[1])
            self._volume_max = self._call(read, 'reading the volume API version', ConnectionFailedError)
        return self._volume_max

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
        volumes = self._data_volumes(server)
        if len(volumes) > MAX_VOLUMES:
            raise UnsupportedError("server '%s' has %d attached volumes; include_volumes records at most %d volume "
                                   "snapshots in one image property" % (guest.name, len(volumes), MAX_VOLUMES))

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
    def _server_images(self, server: Any) -> List[Dict[str, Any]]:
        """This server's snapshot images: createImage of the server itself (instance_uuid), plus
        boot-from-volume ones this collection made (they have no instance_uuid)."""
        by_id: Dict[str, Dict[str, Any]] = {}
        for image in self._images(instance_uuid=server.id):
            by_id[image['id']] = image
        for image in self._images(**{P_SERVER: server.id}):
            if _owned(image) and image.get(P_SELF):
                by_id[image['id']] = image
        return [i for i in by_id.values() if i.get('status') not in _GONE]

    def _record(self, image: Dict[str, Any]) -> SnapshotRecord:
        owned = _owned(image)
        get = (lambda key: image.get(key) or None) if owned else (lambda key: None)
        size = image.get('size')
        bfv_snaps = _bdm_snapshot_ids(image)
        included = _included_snapshot_ids(image)
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
                              'include_volumes': owned and image.get(P_INCLUDE_VOLUMES) == 'true',
                              'volumes': volumes,
                              'volumes_size_bytes': sum(v['size_bytes'] or 0 for v in volumes)},
        )
        if get(P_OWNER):
            record.apply_marker(Marker(owner=get(P_OWNER), created_by=get(P_CREATED_BY) or '',
                                       expires_at=from_iso(get(P_EXPIRES))))
        return record

    def _volume_snapshot_info(self, snapshot_id: str) -> Dict[str, Any]:
        snap = self._call(lambda: self.conn.block_storage.find_snapshot(snapshot_id, ignore_missing=True),
                          'reading volume snapshot %s' % snapshot_id)
        if snap is None:
            return {'snapshot_id': snapshot_id, 'volume_id': None, 'status': 'missing', 'size_gb': None,
                    'size_bytes': None}
        size = getattr(snap, 'size', None)
        return {'snapshot_id': snapshot_id, 'volume_id': snap.volume_id, 'status': snap.status,
                'size_gb': size, 'size_bytes': int(size) * 1024 ** 3 if size is not None else None}

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
        base = _server_image_id(server)
        marked = metadata.get(M_CURRENT)
        if marked in by_id and metadata.get(M_CURRENT_BASE, '') == base:
            return marked
        return base if base in by_id else None

    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        return self._records(self._server(guest.id))[0]

    def _set_current(self, server_id: str, image_id: str, base: str) -> None:
        self._call(lambda: self.conn.compute.set_server_metadata(server_id, **{M_CURRENT: image_id,
                                                                               M_CURRENT_BASE: base}),
                   'recording the current snapshot in the metadata of server %s' % server_id, GuestNotFoundError)

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        server = self._server(guest.id)
        records, _images = self._records(server)
        current = next((r for r in records if r.current), None)
        marker = spec.marker
        marker_data = marker.to_dict() if marker is not None else {}
        properties = {key: '' for key in CREATE_KEYS}
        properties.update({
            P_SERVER: server.id, P_NAME: spec.name, P_PARENT: current.id if current else '',
            P_POWER: _POWER.get(server.status, 'unknown'), P_DESCRIPTION: spec.description or '',
            P_OWNER: marker_data.get('owner') or '', P_CREATED_BY: marker_data.get('created_by') or '',
            P_EXPIRES: marker_data.get('expires_at') or '', P_BASE: _server_image_id(server),
        })
        included: List[str] = []
        if (spec.options or {}).get('include_volumes'):
            # Checked again here: the server may have changed since the decide phase.
            self._check_include_volumes(self._guest(server))
            included = self._snapshot_volumes(guest, server, spec, marker_data)
            properties[P_INCLUDE_VOLUMES] = 'true'
            properties[P_VOLUME_SNAPSHOTS] = ','.join(included)
        try:
            image = self._call(lambda: self.conn.compute.create_server_image(server, spec.name, metadata=properties,
                                                                             wait=False),
                               "creating snapshot '%s' of server '%s'" % (spec.name, guest.name), GuestNotFoundError)
        except SavepointError as exc:
            self._drop_volume_snapshots(included, exc)
            raise
        op = Operation(action='create', guest=guest, snapshot_name=spec.name, id=image.id,
                       handle={'step': 'create', 'image_id': image.id, 'server_id': server.id,
                               'volume_snapshots': included})
        # Nova does not report how long the guest was blocked (live snapshots on libvirt are not paused).
        op.blocked_seconds = None
        if not _server_image_id(server):
            # Boot from volume: createImage returns once the image is active. Finish now, so that the
            # snapshot is marked as this collection's even when the task does not wait.
            self._poll_create(op)
        return op

    def _snapshot_volumes(self, guest: Guest, server: Any, spec: SnapshotSpec,
                          marker_data: Dict[str, Any]) -> List[str]:
        """Cinder snapshots of every attached data volume (forced: they are in-use); on a failure the ones
        already made are deleted again and the error raised, so nothing half-made remains."""
        made: List[str] = []
        metadata = {P_SERVER: server.id, P_NAME: spec.name, P_OWNER: marker_data.get('owner') or '',
                    P_CREATED_BY: marker_data.get('created_by') or ''}
        for volume_id in self._data_volumes(server):
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

    def _delete_volume_snapshots(self, snapshot_ids: List[str]) -> List[str]:
        """Best-effort delete (clean-up of a failed create); returns the ids that could not be deleted.

        Cinder refuses to delete a snapshot that is still 'creating', so those are waited for first, for at
        most SETTLE_SECONDS.
        """
        left = []
        deadline = time.monotonic() + SETTLE_SECONDS
        for sid in snapshot_ids:
            try:
                while True:
                    snap = self.conn.block_storage.find_snapshot(sid, ignore_missing=True)
                    if snap is None or snap.status != 'creating' or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                if snap is not None:
                    self.conn.block_storage.delete_snapshot(sid, ignore_missing=True)
            except Exception:  # reported by the caller, the original error stays the one raised
                left.append(sid)
        return left

    def _drop_volume_snapshots(self, snapshot_ids: List[str], error: SavepointError) -> None:
        """Best-effort removal of the volume snapshots of a create that failed; the error says what happened."""
        if not snapshot_ids:
            return
        left = self._delete_volume_snapshots(snapshot_ids)
        if left:
            error.msg += '; the volume snapshot%s %s could not be deleted: remove by hand' % (
                's' if len(left) > 1 else '', ', '.join(left))
        else:
            error.msg += '; the volume snapshot%s %s made for it %s deleted' % (
                's' if len(snapshot_ids) > 1 else '', ', '.join(snapshot_ids),
                'were' if len(snapshot_ids) > 1 else 'was')
        error.args = (error.msg,)

    def _volume_revert_plan(self, guest: Guest, snapshot: SnapshotRecord,
                            image: Dict[str, Any]) -> List[Tuple[str, str]]:
        """include_volumes: (volume id, Cinder snapshot id) pairs to revert, or an UnsupportedError saying why
        a volume cannot be reverted -- all checked before anything is written."""
        included = _included_snapshot_ids(image)
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
            snap = self._call(lambda sid=sid: self.conn.block_storage.find_snapshot(sid, ignore_missing=True),
                              'reading volume snapshot %s of %s' % (sid, name))
            if snap is None:
                problems.append('its volume snapshot %s is gone' % sid)
                continue
            if snap.status != 'available':
                problems.append('its volume snapshot %s (of volume %s) is %s, not available'
                                % (sid, snap.volume_id, snap.status))
                continue
            find_volume = self.conn.block_storage.find_volume
            volume = self._call(lambda vid=snap.volume_id: find_volume(vid, ignore_missing=True),
                                'reading volume %s' % snap.volume_id)
            if volume is None:
                problems.append('volume %s (volume snapshot %s) no longer exists' % (snap.volume_id, sid))
                continue
            if volume.status != 'available':
                attached = [a.get('server_id') for a in getattr(volume, 'attachments', None) or []
                            if isinstance(a, dict)]
                problems.append('volume %s is %s%s: Cinder reverts only detached (available) volumes, and this '
                                'collection does not detach volumes behind the guest\'s back; detach it (openstack '
                                'server remove volume), run the revert again, then attach it again'
                                % (volume.id, volume.status,
                                   ' (attached to server %s)' % ', '.join(attached) if attached else ''))
                continue
            list_snapshots = self.conn.block_storage.snapshots
            others = self._call(lambda vid=volume.id: list(list_snapshots(details=True, volume_id=vid)),
                                'listing the snapshots of volume %s' % volume.id)
            mine = _cinder_time(snap.created_at)
            later = [o.id for o in others if o.id != sid and _cinder_time(o.created_at) > mine]
            same = [o.id for o in others if o.id != sid and _cinder_time(o.created_at) == mine]
            if later:
                problems.append('volume snapshot %s is not the latest snapshot of volume %s (newer: %s), and Cinder '
                                'reverts a volume only to its latest snapshot; delete the newer snapshot(s) first '
                                '(for restore points of this collection: their snapshot with state: absent)'
                                % (sid, volume.id, ', '.join(later)))
                continue
            if same:
                problems.append('volume snapshot %s of volume %s was taken in the same second as %s; Cinder picks '
                                'the latest snapshot by its created_at (1 s resolution), so it cannot tell which '
                                'one is latest' % (sid, volume.id, ', '.join(same)))
                continue
            plan.append((volume.id, sid))
        if problems:
            raise UnsupportedError('%s cannot be reverted with its data volumes, nothing was changed: %s'
                                   % (name, '; '.join(problems)))
        return plan

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
        if image is None or server.id not in (image.get('instance_uuid'), image.get(P_SERVER) if _owned(image) else None):
            raise SnapshotNotFoundError("snapshot '%s' (image %s) of server '%s' is gone"
                                        % (snapshot.name, snapshot.id, guest.name))
        if image.get('status') != 'active':
            raise UnsupportedError("snapshot '%s' (image %s) is %s, not active: it cannot be reverted to"
                                   % (snapshot.name, snapshot.id, image.get('status')))
        if self._boot_from_volume(server):
            return self._start_reimage(guest, server, snapshot, image, power_state)
        volumes = self._volume_revert_plan(guest, snapshot, image)
        # Data volumes first (they are detached, so independent of the rebuild), then the server.
        reverted: List[str] = []
        for volume_id, sid in volumes:
            def revert(volume_id: str = volume_id, sid: str = sid) -> None:
                response = self.conn.block_storage.post('/volumes/%s/action' % volume_id,
                                                        json={'revert': {'snapshot_id': sid}},
                                                        microversion=VOLUME_REVERT_MICROVERSION)
                if response.status_code >= 400:
                    os_exc.raise_from_response(response)
            try:
                self._call(revert, "reverting volume %s to volume snapshot %s of snapshot '%s'"
                           % (volume_id, sid, snapshot.name))
            except SavepointError as exc:
                if reverted:
                    exc.msg += ('; volume%s %s %s already being reverted, the server was not rebuilt'
                                % ('s' if len(reverted) > 1 else '', ', '.join(reverted),
                                   'are' if len(reverted) > 1 else 'is'))
                    exc.args = (exc.msg,)
                raise
            reverted.append(volume_id)
        doing = "rebuilding server '%s' from snapshot '%s' (image %s)" % (guest.name, snapshot.name, snapshot.id)
        try:
            self._call(lambda: self.conn.compute.rebuild_server(server, image=snapshot.id), doing, GuestNotFoundError)
        except SavepointError as exc:
            if reverted:
                exc.msg += ('; the data volume%s %s %s being reverted, but the server was not rebuilt'
                            % ('s' if len(reverted) > 1 else '', ', '.join(reverted),
                               'are' if len(reverted) > 1 else 'is'))
                exc.args = (exc.msg,)
            raise
        op = Operation(action='revert', guest=guest, snapshot_name=snapshot.name, id=snapshot.id,
                       handle={'step': 'rebuild', 'image_id': snapshot.id, 'server_id': server.id,
                               'volumes': [list(pair) for pair in volumes]})
        op.follow_up = lambda: self._after_revert(guest, snapshot, power_state)
        return op

    def _start_reimage(self, guest: Guest, server: Any, snapshot: SnapshotRecord, image: Dict[str, Any],
                       power_state: str) -> Operation:
        """Boot from volume: rebuild (>= 2.93) onto a 1-byte carrier image that names the snapshot's Cinder
        snapshot of the root volume; Cinder then copies that snapshot onto the root volume.

        Nova waits reimage_timeout_per_gb x ceil(image size in GiB) for the re-image: 0 s for the 0-byte
        snapshot image itself (a rebuild onto it always fails on nova 34), one unit for the carrier.
        """
        mappings = image.get('block_device_mapping') or '[]'
        try:
            bdms = json.loads(mappings) if isinstance(mappings, str) else list(mappings)
        except ValueError:
            bdms = []
        root = [m for m in bdms if isinstance(m, dict) and m.get('source_type') == 'snapshot'
                and str(m.get('boot_index')) == '0' and m.get('snapshot_id')]
        others = [m for m in bdms if isinstance(m, dict) and m not in root and m.get('snapshot_id')]
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
        volumes = [v['id'] if isinstance(v, dict) else v.id for v in server.attached_volumes or []]
        root_volume = volume_snapshot.volume_id
        if root_volume not in volumes:
            raise UnsupportedError('%s was taken of volume %s, which is no longer attached to the server'
                                   % (name, root_volume))
        carrier_props = {
            'block_device_mapping': mappings if isinstance(mappings, str) else json.dumps(mappings),
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
        op = Operation(action='revert', guest=guest, snapshot_name=snapshot.name, id=snapshot.id,
                       handle={'step': 'rebuild', 'image_id': snapshot.id, 'server_id': server.id,
                               'carrier': carrier.id, 'root_volume': root_volume})

        def rebuild() -> None:
            response = self.conn.compute.post('/servers/%s/action' % server.id,
                                              json={'rebuild': {'imageRef': carrier.id}},
                                              microversion=REIMAGE_MICROVERSION)
            if response.status_code >= 400:
                os_exc.raise_from_response(response)
        try:
            self._call(rebuild, "rebuilding server '%s' (boot from volume) from %s" % (guest.name, name),
                       GuestNotFoundError)
        except SavepointError:
            self._drop_carrier(op)
            raise
        op.follow_up = lambda: self._after_revert(guest, snapshot, power_state)
        return op

    def _drop_carrier(self, op: Operation) -> None:
        carrier = (op.handle or {}).pop('carrier', None)
        if carrier:
            try:
                self.conn.image.delete_image(carrier, ignore_missing=True)
            except Exception:  # a leftover carrier is named savepoint-restore-<id>, harmless and findable
                pass

    def _after_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Optional[Operation]:
        # The server now runs the snapshot image (boot from volume: no image at all).
        self._set_current(guest.id, snapshot.id, _server_image_id(self._server(guest.id)))
        want = {'on': 'running', 'off': 'off'}.get(power_state, snapshot.power_state)
        if want == 'unknown':
            # A snapshot this collection did not take records no power state: the server stays as Nova left it.
            return None
        return self._power_step(guest, snapshot, want)

    def _power_step(self, guest: Guest, snapshot: SnapshotRecord, want: str) -> Optional[Operation]:
        """One Nova power action towards ``want``; its follow-up takes the next one (off -> running -> paused)."""
        server = self._server(guest.id)
        have = _POWER.get(server.status, 'unknown')
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
                       handle={'step': 'power', 'server_id': server.id, 'want': then})
        if _POWER[then] != want:
            op.follow_up = lambda: self._power_step(guest, snapshot, want)
        return op

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
                            for sid in _bdm_snapshot_ids(images[r.id]) + _included_snapshot_ids(images[r.id])]
        # Pitfall: the volume snapshots of a boot-from-volume image go first (a root volume with snapshots
        # cannot be deleted with its server); the image only once they are gone, so a failure can be retried.
        for sid in volume_snapshots:
            self._call(lambda sid=sid: self.conn.block_storage.delete_snapshot(sid, ignore_missing=True),
                       "deleting volume snapshot %s of snapshot '%s'" % (sid, snapshot.name))
        op.handle = {'step': 'delete', 'server_id': server.id, 'doomed': [r.id for r in doomed],
                     'volume_snapshots': volume_snapshots}
        if not volume_snapshots:
            self._finish_delete(op)
        return op

    def _finish_delete(self, op: Operation) -> None:
        handle = op.handle
        server = self._server(handle['server_id'])
        records, images = self._records(server)
        doomed = set(handle['doomed'])
        by_id = {r.id: r for r in records}
        current = next((r for r in records if r.current), None)
        for image_id in handle['doomed']:
            self._call(lambda image_id=image_id: self.conn.image.delete_image(image_id, ignore_missing=True),
                       'deleting snapshot image %s' % image_id)

        def surviving_parent(record: Optional[SnapshotRecord]) -> Optional[SnapshotRecord]:
            while record is not None and record.id in doomed:
                record = by_id.get(record.parent_id or '')
            return record

        for record in records:
            if record.id not in doomed and record.parent_id in doomed and _owned(images[record.id]):
                parent = surviving_parent(by_id.get(record.parent_id or ''))
                self._patch_image(images[record.id], {P_PARENT: parent.id if parent else ''})
        if current is not None and current.id in doomed:
            parent = surviving_parent(current)
            self._set_current(server.id, parent.id if parent else '', _server_image_id(server))
        op.finish()

    # -- waiting -------------------------------------------------------------------
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
        step = (operation.handle or {}).get('step')
        if step == 'create':
            self._poll_create(operation)
        elif step == 'rebuild':
            self._poll_rebuild(operation)
        elif step == 'power':
            self._poll_power(operation)
        elif step == 'delete':
            self._poll_delete(operation)
        else:
            raise ProviderError('openstack: cannot poll an unknown %s operation' % operation.action)

    def _fault(self, server: Any) -> str:
        fault = getattr(server, 'fault', None) or {}
        return (fault.get('message') or '') if isinstance(fault, dict) else str(fault)

    def _poll_create(self, op: Operation) -> None:
        handle = op.handle
        image = self._image(handle['image_id'])
        server = self._server(handle['server_id'])
        name = op.snapshot_name
        if image is None or image.get('status') in _GONE:
            fault = self._fault(server)
            op.finish(error=ProviderError(
                "snapshot '%s' of server '%s' failed: Nova %s the image %s%s"
                % (name, op.guest.name, 'removed' if image is None else 'left %s' % image.get('status'),
                   handle['image_id'], ' (%s)' % fault if fault else ''), provider_message=fault or None))
            self._abandon(op)
            return
        if image.get('status') != 'active' or getattr(server, 'task_state', None):
            return
        for sid in handle.get('volume_snapshots') or []:
            snap = self._call(lambda sid=sid: self.conn.block_storage.find_snapshot(sid, ignore_missing=True),
                              'reading volume snapshot %s' % sid)
            status = snap.status if snap is not None else 'deleted'
            if status == 'creating':
                return
            if status != 'available':
                op.finish(error=ProviderError("snapshot '%s' of server '%s' failed: Cinder left volume snapshot %s "
                                              "of volume %s %s" % (name, op.guest.name, sid,
                                                                   getattr(snap, 'volume_id', '?'), status)))
                self._abandon(op)
                return
        try:
            self._patch_image(image, {P_SELF: image['id']})
            self._set_current(server.id, image['id'], _server_image_id(server))
        except SavepointError as exc:
            op.finish(error=ProviderError("snapshot '%s' of server '%s' was taken but could not be marked: %s"
                                          % (name, op.guest.name, exc.msg), provider_message=exc.provider_message))
            self._abandon(op)
            return
        image[P_SELF] = image['id']
        server = self._server(handle['server_id'])
        records, _images = self._records(server)
        record = next((r for r in records if r.id == image['id']), None)
        if record is None:
            op.finish(error=ProviderError("snapshot '%s' of server '%s' (image %s) is not listed after it was taken"
                                          % (name, op.guest.name, image['id'])))
            return
        op.finish(result=record)

    def _poll_rebuild(self, op: Operation) -> None:
        server = self._server(op.handle['server_id'])
        if 'root_volume' in op.handle:
            self._poll_reimage(op, server)
            return
        if server.status == 'ERROR':
            fault = self._fault(server)
            op.finish(error=ProviderError("rebuilding server '%s' from snapshot '%s' failed; the server is in ERROR%s"
                                          % (op.guest.name, op.snapshot_name, ': %s' % fault if fault else ''),
                                          provider_message=fault or None))
            return
        if getattr(server, 'task_state', None) or server.status not in ('ACTIVE', 'SHUTOFF'):
            return
        if _server_image_id(server) != op.handle['image_id']:
            op.finish(error=ProviderError("server '%s' finished its rebuild on image %s, not on snapshot '%s' "
                                          "(image %s): the revert did not happen"
                                          % (op.guest.name, _server_image_id(server) or '(none)', op.snapshot_name,
                                             op.handle['image_id'])))
            return
        if not self._volumes_reverted(op):
            return
        op.finish()

    def _volumes_reverted(self, op: Operation) -> bool:
        """include_volumes: True once every data volume is back to available after its revert; a volume in
        error (Cinder's revert failed) finishes the operation with that error."""
        for volume_id, sid in op.handle.get('volumes') or []:
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

    def _poll_reimage(self, op: Operation, server: Any) -> None:
        if server.status == 'ERROR':
            fault = self._fault(server)
            self._drop_carrier(op)
            op.finish(error=ProviderError("re-imaging the root volume of server '%s' from snapshot '%s' failed; the "
                                          "server is in ERROR%s" % (op.guest.name, op.snapshot_name,
                                                                    ': %s' % fault if fault else ''),
                                          provider_message=fault or None))
            return
        if getattr(server, 'task_state', None) or server.status not in ('ACTIVE', 'SHUTOFF'):
            return
        volumes = [v['id'] if isinstance(v, dict) else v.id for v in server.attached_volumes or []]
        volume = self._call(lambda: self.conn.block_storage.get_volume(op.handle['root_volume']),
                            'reading root volume %s' % op.handle['root_volume'])
        meta = getattr(volume, 'volume_image_metadata', None) or {}
        if op.handle['root_volume'] not in volumes or meta.get('image_id') != op.handle.get('carrier'):
            self._drop_carrier(op)
            op.finish(error=ProviderError("server '%s' finished its rebuild but Cinder did not re-image root volume "
                                          "%s from snapshot '%s': the revert did not happen"
                                          % (op.guest.name, op.handle['root_volume'], op.snapshot_name)))
            return
        self._drop_carrier(op)
        op.finish()

    def _poll_power(self, op: Operation) -> None:
        server = self._server(op.handle['server_id'])
        if server.status == 'ERROR':
            op.finish(error=ProviderError("server '%s' went to ERROR while changing its power state: %s"
                                          % (op.guest.name, self._fault(server))))
            return
        if getattr(server, 'task_state', None):
            return
        if server.status == op.handle['want']:
            op.finish()
        elif server.status in ('ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED'):
            op.finish(error=ProviderError("server '%s' is %s after the revert, not %s as asked"
                                          % (op.guest.name, server.status, op.handle['want'])))

    def _poll_delete(self, op: Operation) -> None:
        for sid in op.handle['volume_snapshots']:
            snap = self._call(lambda sid=sid: self.conn.block_storage.find_snapshot(sid, ignore_missing=True),
                              'reading volume snapshot %s' % sid)
            if snap is None:
                continue
            if snap.status in ('error_deleting', 'error'):
                op.finish(error=ProviderError("volume snapshot %s of snapshot '%s' could not be deleted (%s); the "
                                              "snapshot image is kept, run the delete again"
                                              % (sid, op.snapshot_name, snap.status)))
                return
            return
        self._finish_delete(op)

    def _abandon(self, op: Operation) -> List[str]:
        """Remove what an unfinished create left, so no half-made restore point is listed later; returns the
        include_volumes snapshots that could not be deleted (and says so in the operation's error)."""
        image_id = op.handle.get('image_id')
        removed = []
        left = self._delete_volume_snapshots(op.handle.get('volume_snapshots') or [])
        if left and op.error is not None:
            op.error.msg += '; the volume snapshot(s) %s could not be deleted: remove by hand' % ', '.join(left)
            op.error.args = (op.error.msg,)
        try:
            image = self._image(image_id)
            if image is not None:
                for sid in _bdm_snapshot_ids(image):
                    self.conn.block_storage.delete_snapshot(sid, ignore_missing=True)
                self.conn.image.delete_image(image_id, ignore_missing=True)
                removed.append(image_id)
        except Exception:  # best effort: the error already reported is the one that matters
            return left
        if removed and op.error is not None:
            op.error.msg += '; the unfinished snapshot image %s was deleted' % image_id
            op.error.args = (op.error.msg,)
        return left

    def wait(self, operations: List[Operation], policy: WaitPolicy,
             progress: Optional[ProgressCallback] = None) -> None:
        try:
            super().wait(operations, policy, progress)
        except WaitTimeoutError as exc:
            abandoned, left = [], []
            for op in operations:
                for step in op.chain():
                    if not step.done and (step.handle or {}).get('step') == 'create':
                        left.extend(self._abandon(step))
                        abandoned.append(step.handle['image_id'])
            if abandoned:
                exc.msg += ('; the unfinished snapshot image%s %s %s deleted, so no half-made restore point '
                            'remains' % ('s' if len(abandoned) > 1 else '', ', '.join(abandoned),
                                         'were' if len(abandoned) > 1 else 'was'))
                exc.args = (exc.msg,)
            if left:
                exc.msg += '; its volume snapshot(s) %s could not be deleted: remove by hand' % ', '.join(left)
                exc.args = (exc.msg,)
            raise

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenStack session: connection options, how they become openstacksdk's config, auth.

openstacksdk resolves the cloud (clouds.yaml via OS_CLIENT_CONFIG_FILE, OS_CLOUD,
the OS_* environment, a single cloud in clouds.yaml) in ``get_cloud_region``;
that is done here as its own step, so that messages can name the cloud the SDK
actually chose, and options only override clouds.yaml when they were given
(``verify`` in particular: AWX's OpenStack credential with "Verify SSL" off
writes ``verify: false`` into the clouds.yaml it hands over).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._errors import ConnectionFailedError, GuestNotFoundError, InvalidRequestError, MissingLibraryError, \
    SavepointError, SnapshotNotFoundError
from . import errors
from .errors import load_openstacksdk, scrub_url, translate

#: keystoneauth auth plugin options (every plugin keystoneauth1 ships); True = a secret (never logged).
#: tests/openstack/test_openstack_unit.py checks this against keystoneauth's own ``secret`` flags.
AUTH_KEYS: Dict[str, bool] = {
    'access_token': True, 'access_token_endpoint': False, 'access_token_type': False,
    'application_credential_id': False, 'application_credential_name': False,
    'application_credential_secret': True, 'auth_methods': False, 'auth_url': False, 'client_id': False,
    'client_secret': True, 'code': True, 'code_challenge_method': False, 'default_domain_id': False,
    'default_domain_name': False, 'device_authorization_endpoint': False, 'discovery_endpoint': False,
    'domain_id': False, 'domain_name': False, 'endpoint': False, 'identity_provider': False,
    'idp_otp_key': False, 'login_timeout': False, 'oauth2_client_id': False, 'oauth2_client_secret': True,
    'oauth2_endpoint': False, 'passcode': True, 'password': True, 'project_domain_id': False,
    'project_domain_name': False, 'project_id': False, 'project_name': False, 'protocol': False,
    'redirect_host': False, 'redirect_port': False, 'redirect_uri': False, 'scope': False,
    'system_scope': False, 'tenant_id': False, 'tenant_name': False, 'token': True, 'trust_id': False,
    'user_domain_id': False, 'user_domain_name': False, 'user_id': False, 'username': False,
}
_AUTH_TYPES = {'redirect_port': 'int', 'login_timeout': 'int', 'auth_methods': 'list'}
#: key names of a cloud dict whose values are secrets wherever they appear (nested included)
SECRET_KEYS = frozenset(k for k, secret in AUTH_KEYS.items() if secret) | {'secret', 'key_password'}


def auth_suboptions() -> Dict[str, Dict[str, Any]]:
    """The argument spec of the ``auth`` option (doc_fragments/openstack.py documents it from this)."""
    options: Dict[str, Dict[str, Any]] = {}
    for key, secret in AUTH_KEYS.items():
        entry: Dict[str, Any] = {'type': _AUTH_TYPES.get(key, 'str'), 'no_log': secret}
        if entry['type'] == 'list':
            entry['elements'] = 'str'
        options[key] = entry
    return options


#: seconds one API request may take when neither api_timeout nor clouds.yaml says (proxies in front of
#: OpenStack APIs cut requests at 60-120 s anyway); a request to a hung service fails after this
DEFAULT_API_TIMEOUT = 120
CONNECTION_OPTIONS: Dict[str, Dict[str, Any]] = {
    # raw: a cloud name, or a dict of cloud settings as in clouds.yaml (openstack.cloud's `cloud`)
    'cloud': {'type': 'raw', 'env': ['OS_CLOUD'],
              'description': 'Named cloud in clouds.yaml (OS_CLIENT_CONFIG_FILE is honoured), or a dict of '
                             'cloud settings.'},
    'auth': {'type': 'dict', 'options': auth_suboptions(),
             'description': 'Auth settings of the auth plugin; only the secret keys are no_log.'},
    'auth_type': {'type': 'str', 'description': 'Keystone auth plugin name, for example password or token.'},
    'region_name': {'type': 'str', 'description': 'Region of the cloud.'},
    'interface': {'type': 'str', 'default': 'public', 'choices': ['public', 'internal', 'admin'],
                  'aliases': ['endpoint_type'], 'description': 'Endpoint type to use from the catalog.'},
    # No default and no alias here: the neutral modules share this option with the VMware
    # provider; unset means "as clouds.yaml says" (true when it says nothing).
    'validate_certs': {'type': 'bool', 'description': 'Verify TLS certificates of the endpoints.'},
    'ca_cert': {'type': 'str', 'aliases': ['cacert'], 'description': 'CA bundle to verify the endpoints with.'},
    'client_cert': {'type': 'str', 'aliases': ['cert'], 'description': 'Client certificate (PEM) for TLS.'},
    'client_key': {'type': 'str', 'aliases': ['key'], 'no_log': False,
                   'description': 'Key of the client certificate (a path, not a secret itself).'},
    'api_timeout': {'type': 'int', 'description': 'Seconds one API request may take.'},
    'sdk_log_path': {'type': 'str', 'description': "File openstacksdk's log is appended to."},
    'sdk_log_level': {'type': 'str', 'default': 'INFO', 'choices': ['INFO', 'DEBUG'],
                      'description': 'Level of the openstacksdk log (DEBUG logs requests).'},
    'boot_from_volume_revert': {'type': 'str', 'default': 'refuse', 'choices': ['refuse', 'reimage'],
                                'description': 'Whether boot-from-volume servers may be reverted by a re-image '
                                               'of their root volume.'},
}
#: options that a cloud dict must not be combined with (the dict is the whole configuration)
_CLOUD_DICT_EXCLUSIVE = ('auth', 'auth_type', 'region_name')


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('1', 'true', 'yes', 'on', 'y', 't'):
        return True
    if text in ('0', 'false', 'no', 'off', 'n', 'f'):
        return False
    raise InvalidRequestError('%s must be true or false, not %r' % (name, value))


def secret_values(value: Any) -> List[str]:
    """Values under secret key names anywhere in a (cloud) dict, for the module layer's no_log list."""
    found: List[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() in SECRET_KEYS and isinstance(item, (str, int)) and str(item):
                found.append(str(item))
            else:
                found.extend(secret_values(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.extend(secret_values(item))
    return found


class Settings:
    """The connection options, checked (no SDK needed) before anything is contacted."""

    def __init__(self, conn: Dict[str, Any]) -> None:
        cloud = conn.get('cloud')
        if cloud is None:
            cloud = os.environ.get('OS_CLOUD') or None
        if isinstance(cloud, str) and cloud == '':
            raise InvalidRequestError('cloud must name a cloud of clouds.yaml (or be a dict), not an empty string')
        if cloud is not None and not isinstance(cloud, (str, dict)):
            raise InvalidRequestError('cloud must be the name of a cloud in clouds.yaml or a dict of cloud settings, '
                                      'not %s' % type(cloud).__name__)
        if isinstance(cloud, dict):
            given = [o for o in _CLOUD_DICT_EXCLUSIVE if conn.get(o)]
            if given:
                raise InvalidRequestError('cloud is a dict of cloud settings (the whole configuration), so %s cannot '
                                          'be given beside it: put %s into the cloud dict'
                                          % (', '.join(given), 'them' if len(given) > 1 else 'it'))
        self.cloud = cloud
        self.auth = conn.get('auth') or None
        if self.auth is not None and not isinstance(self.auth, dict):
            raise InvalidRequestError('auth must be a dictionary of auth settings')
        self.interface = conn.get('interface') or 'public'
        validate = conn.get('validate_certs')
        #: None = clouds.yaml (or the SDK's default, true) decides
        self.validate_certs: Optional[bool] = None if validate is None else _bool(validate, 'validate_certs')
        timeout = conn.get('api_timeout')
        self.api_timeout = int(timeout) if timeout not in (None, '') else None
        for option in ('auth_type', 'region_name', 'ca_cert', 'client_cert', 'client_key', 'sdk_log_path'):
            if conn.get(option) == '':
                raise InvalidRequestError('%s must not be an empty string (leave it unset instead)' % option)
        self.options = {o: conn.get(o) for o in ('auth_type', 'region_name', 'ca_cert', 'client_cert', 'client_key')}
        if self.options['client_key'] and not self.options['client_cert']:
            raise InvalidRequestError('client_key needs client_cert (the certificate it belongs to)')
        self.log_path = conn.get('sdk_log_path') or None
        self.log_level = (conn.get('sdk_log_level') or 'INFO').upper()
        if self.log_level not in ('INFO', 'DEBUG'):
            raise InvalidRequestError('sdk_log_level must be INFO or DEBUG, not %r' % (conn.get('sdk_log_level'),))
        self.bfv_revert = conn.get('boot_from_volume_revert') or 'refuse'
        if self.bfv_revert not in ('refuse', 'reimage'):
            raise InvalidRequestError('boot_from_volume_revert must be refuse or reimage, not %r' % (self.bfv_revert,))

    def sdk_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of openstack.config.get_cloud_region: only what was given overrides clouds.yaml."""
        kwargs: Dict[str, Any] = {'interface': self.interface}
        if isinstance(self.cloud, dict):
            kwargs.update(self.cloud)
            kwargs.setdefault('interface', self.interface)
        elif self.cloud:
            kwargs['cloud'] = self.cloud
        if self.auth:
            kwargs['auth'] = {k: v for k, v in self.auth.items() if v is not None}
        if self.validate_certs is not None:
            kwargs['verify'] = self.validate_certs
        for option, key in (('auth_type', 'auth_type'), ('region_name', 'region_name'), ('ca_cert', 'cacert'),
                            ('client_cert', 'cert'), ('client_key', 'key')):
            if self.options.get(option):
                kwargs[key] = self.options[option]
        if self.api_timeout:
            kwargs['api_timeout'] = self.api_timeout
        return kwargs

    def given_where(self) -> str:
        """The cloud as the options name it (before the SDK has resolved it)."""
        if isinstance(self.cloud, str) and self.cloud:
            return "cloud '%s'" % self.cloud
        url = (self.auth or {}).get('auth_url') or (
            (self.cloud.get('auth') or {}).get('auth_url') if isinstance(self.cloud, dict) else None)
        if url:
            return 'the cloud at %s' % scrub_url(str(url))
        if isinstance(self.cloud, dict):
            return 'the cloud given as a dict'
        return 'the cloud openstacksdk chose (clouds.yaml or the OS_* environment)'


def describe_region(region: Any, settings: Settings) -> str:
    """The cloud openstacksdk resolved, named as a user would recognise it."""
    name = getattr(region, 'name', None)
    url = ((getattr(region, 'config', None) or {}).get('auth') or {}).get('auth_url')
    at = ' at %s' % scrub_url(str(url)) if url else ''
    if isinstance(settings.cloud, str) and settings.cloud:
        return "cloud '%s'" % settings.cloud
    if name == 'envvars':
        return 'the cloud from the OS_* environment%s' % at
    if name and name != 'defaults' and not isinstance(settings.cloud, dict) and not settings.auth:
        return "cloud '%s' (the only cloud in clouds.yaml)%s" % (name, at)
    if name and name != 'defaults' and not isinstance(settings.cloud, dict):
        return "cloud '%s'%s" % (name, at)
    return 'the cloud%s' % at if at else settings.given_where()


class SessionMixin:
    """Session handling shared by every part of the backend: connect, one translated call, lookups."""

    settings: Settings
    conn: Any = None
    where: str = ''
    _compute_max: Optional[Tuple[int, int]] = None
    _volume_max: Optional[Tuple[int, int]] = None
    #: how many times this backend has written a lease (lease.py): a server read started before the last
    #: lease write says nothing about the lease
    _lease_writes: int = 0
    #: server id -> (time.monotonic() the read started, _lease_writes then, the server's metadata)
    _server_reads: Optional[Dict[str, Tuple[float, int, Dict[str, str]]]] = None

    def _where(self) -> str:
        return self.where or self.settings.given_where()

    def connect(self) -> None:
        if not load_openstacksdk():
            raise MissingLibraryError('the openstack provider needs openstacksdk (pip install openstacksdk) where '
                                      'the module runs', provider_message=errors.OPENSTACK_IMPORT_ERROR)
        sdk = errors.openstack
        # keystoneauth logs failed version discovery as a warning to stderr; the error is reported instead.
        logging.getLogger('keystoneauth').addHandler(logging.NullHandler())
        if self.settings.log_path:
            try:
                sdk.enable_logging(debug=self.settings.log_level == 'DEBUG', path=self.settings.log_path)
            except OSError as exc:
                raise InvalidRequestError('sdk_log_path %s cannot be written: %s'
                                          % (self.settings.log_path, exc.strerror or exc))
        doing = 'reading the OpenStack configuration of %s' % self.settings.given_where()
        try:
            region = sdk.config.get_cloud_region(**self.settings.sdk_kwargs())
        except Exception as exc:  # every sdk/keystoneauth failure becomes an engine error, never a traceback
            raise translate(exc, doing, ConnectionFailedError)
        self.where = describe_region(region, self.settings)
        if region.config.get('api_timeout') in (None, ''):
            # Neither the task nor clouds.yaml bounds one request: without a bound a service that stops
            # answering (a frozen glance-api) would hang the task for ever, past its timeout.
            region.config['api_timeout'] = DEFAULT_API_TIMEOUT
        try:
            self.conn = sdk.connection.Connection(config=region)
            self.conn.authorize()
        except Exception as exc:  # every sdk/keystoneauth failure becomes an engine error, never a traceback
            self.close()
            raise translate(exc, 'connecting to OpenStack %s' % self.where, ConnectionFailedError)

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

    def _server(self, server_id: str) -> Any:
        started, writes = time.monotonic(), self._lease_writes
        server = self._call(lambda: self.conn.compute.get_server(server_id), 'reading server %s' % server_id,
                            GuestNotFoundError)
        # Kept for the lease release (lease.py recent_lease), which can then skip a read of its own.
        if self._server_reads is None:
            self._server_reads = {}
        self._server_reads[server_id] = (started, writes, dict(getattr(server, 'metadata', None) or {}))
        return server

    def _server_meanwhile(self, server_id: str) -> Callable[[], Any]:
        """Start reading a server beside the caller's next call (one round trip less in a row); returns
        what waits for that read and gives the server, or raises its error as ``_server`` would.

        The read runs in a thread on the same connection, as openstacksdk itself sends object-store
        segments from its connection's pool executor: keystoneauth's session takes one pooled HTTP
        connection per request (urllib3's pool is thread-safe), the token and the endpoints were fetched
        before, and the read shares no SDK resource object with the caller. It is a daemon thread: a run
        that is cut off does not wait for a read whose result no one needs."""
        outcome: Dict[str, Any] = {}

        def read() -> None:
            try:
                outcome['server'] = self._server(server_id)
            except BaseException as exc:  # pylint: disable=broad-except  # raised again in the caller
                outcome['error'] = exc

        worker = threading.Thread(target=read, name='savepoint-read-server', daemon=True)
        worker.start()

        def result() -> Any:
            worker.join()
            if 'error' in outcome:
                raise outcome['error']
            return outcome['server']
        return result

    def _max_microversion(self, service: str, floor: Tuple[int, int]) -> Tuple[int, int]:
        def read() -> Tuple[int, int]:
            data = getattr(self.conn, service).get_endpoint_data()
            found = getattr(data, 'max_microversion', None) or floor
            return int(found[0]), int(found[1])
        return self._call(read, 'reading the %s API version' % service.replace('_', ' '), ConnectionFailedError)

    def _compute_microversion(self) -> Tuple[int, int]:
        if self._compute_max is None:
            self._compute_max = self._max_microversion('compute', (2, 1))
        return self._compute_max

    def _volume_microversion(self) -> Tuple[int, int]:
        if self._volume_max is None:
            self._volume_max = self._max_microversion('block_storage', (3, 0))
        return self._volume_max


def attached_volume_ids(server: Any) -> List[str]:
    return [v['id'] if isinstance(v, dict) else v.id for v in getattr(server, 'attached_volumes', None) or []]

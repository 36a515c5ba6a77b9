"""Pure logic of the OpenStack backend, in the fast set (no services, no mark): which images count as
this collection's, error translation and scrubbing, volume snapshots of an image, connection options
and how they become openstacksdk's configuration (clouds.yaml files written here, nothing contacted)."""

from __future__ import annotations

import os

import pytest
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as os_exc

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import backend as os_backend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import (
    connection, errors, images, volumes,
)
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    AuthenticationError, CertificateError, ConnectionFailedError, GuestNotFoundError, InvalidRequestError,
    ProviderError,
)

SERVER, BASE = 'srv-1', 'img-base'


def image(**props):
    data = {'id': 'img-new', 'instance_uuid': SERVER, 'base_image_ref': BASE}
    data.update(props)
    return data


@pytest.mark.parametrize('props,owned', [
    ({'savepoint_image_id': 'img-new'}, True),                                  # finished
    ({'savepoint_image_id': '', 'savepoint_base_image': BASE, 'savepoint_server_id': SERVER}, True),  # uploading
    ({'savepoint_image_id': 'img-old'}, False),                                 # inherited, finished
    ({'savepoint_image_id': '', 'savepoint_base_image': 'img-older', 'savepoint_server_id': SERVER}, False),
    ({'savepoint_image_id': '', 'savepoint_base_image': '', 'savepoint_server_id': SERVER,
      'base_image_ref': ''}, False),                                            # no base: only when finished
    ({'savepoint_image_id': '', 'savepoint_base_image': BASE, 'savepoint_server_id': 'other'}, False),
    ({}, False),                                                                # hand-made
])
def test_ownership_cannot_be_inherited(props, owned):
    assert images.owned(image(**props)) is owned


def test_volume_snapshots_of_an_image():
    bdm = '[{"snapshot_id": "s1", "boot_index": 0}, {"snapshot_id": null}, {"source_type": "image"}]'
    assert images.bdm_snapshot_ids({'block_device_mapping': bdm}) == ['s1']
    assert images.bdm_snapshot_ids({'block_device_mapping': 'not json'}) == []
    assert images.bdm_snapshot_ids({}) == []


def _wrapped(inner):
    try:
        try:
            raise inner
        except Exception as exc:
            raise os_exc.SDKException(str(exc)) from exc
    except os_exc.SDKException as outer:
        return outer


@pytest.mark.parametrize('exc,kind', [
    (_wrapped(ksa_exc.Unauthorized('The request you have made requires authentication.')), AuthenticationError),
    (_wrapped(ksa_exc.NotFound('Could not recognize Fernet token', url='http://k:5000/v3/auth/tokens',
                               method='POST', http_status=404)), AuthenticationError),
    (_wrapped(ksa_exc.NotFound('Could not find project', url='http://k:5000/v3/projects/x', method='GET',
                               http_status=404)), ProviderError),
    (_wrapped(ksa_exc.ConnectFailure('Unable to establish connection')), ConnectionFailedError),
    (_wrapped(ksa_exc.ConnectTimeout('timed out')), ConnectionFailedError),
    (_wrapped(ksa_exc.SSLError('certificate verify failed')), CertificateError),
    (_wrapped(ksa_exc.MissingRequiredOptions([])), InvalidRequestError),
    (os_exc.ConfigException('Cloud x was not found.'), ConnectionFailedError),
    (os_exc.HttpException('Instance is locked', http_status=409), ProviderError),
    (os_exc.NotFoundException('No server', http_status=404), GuestNotFoundError),
    (os_exc.ForbiddenException('Policy does not allow', http_status=403), ProviderError),
    (ValueError('odd'), ProviderError),
])
def test_translate(exc, kind):
    err = errors.translate(exc, 'doing it', GuestNotFoundError)
    assert type(err) is kind  # pylint: disable=unidiomatic-typecheck
    assert err.msg.startswith('doing it')


def test_http_errors_keep_the_service_message_and_status():
    exc = os_exc.HttpException('Cannot rebuild', details='Cannot rebuild, task state', http_status=409)
    err = errors.translate(exc, 'rebuilding')
    assert 'HTTP 409' in err.msg and 'Cannot rebuild, task state' in err.msg
    assert err.details == {'http_status': 409}


def test_connection_options_match_openstack_cloud():
    options = os_backend.OpenStackBackend.connection_options
    assert set(options) == {'cloud', 'auth', 'auth_type', 'region_name', 'interface', 'validate_certs', 'ca_cert',
                            'client_cert', 'client_key', 'api_timeout', 'sdk_log_path', 'sdk_log_level',
                            'boot_from_volume_revert'}
    assert options['cloud']['env'] == ['OS_CLOUD'] and options['cloud']['type'] == 'raw'
    assert options['interface']['default'] == 'public'
    # unset: clouds.yaml decides (None); given: it overrides
    assert os_backend.OpenStackBackend({}).validate_certs is None
    assert os_backend.OpenStackBackend({'validate_certs': 'no'}).validate_certs is False
    assert options['boot_from_volume_revert']['default'] == 'refuse'
    with pytest.raises(InvalidRequestError):
        os_backend.OpenStackBackend({'auth': 'user:password'})
    with pytest.raises(InvalidRequestError):
        os_backend.OpenStackBackend({'boot_from_volume_revert': 'yes'})


def test_only_the_secret_auth_keys_are_no_log():
    """auth is no longer no_log as a whole (auth_url, project names show in messages); each secret key is."""
    auth = os_backend.OpenStackBackend.connection_options['auth']
    assert not auth.get('no_log')
    subs = auth['options']
    assert subs['password']['no_log'] is True and subs['application_credential_secret']['no_log'] is True
    assert subs['token']['no_log'] is True and subs['client_secret']['no_log'] is True
    assert subs['auth_url']['no_log'] is False and subs['project_name']['no_log'] is False


def test_auth_keys_mirror_keystoneauth_plugins_and_their_secrets():
    """The table mirrors keystoneauth's plugin options: every option keystoneauth calls a secret is no_log.

    An option the table lacks is refused by the argument spec (never passed, never logged); a secret
    the table lists as harmless would be logged, which is what this test catches.
    """
    from keystoneauth1 import loading
    found = {}
    for name in loading.get_available_plugin_names():
        for option in loading.get_plugin_options(name):
            found[option.dest] = found.get(option.dest, False) or bool(option.secret)
    shared = set(found) & set(connection.AUTH_KEYS)
    assert len(shared) >= 40, sorted(found)  # the table is keystoneauth's, not a guess
    assert [k for k in shared if found[k] and not connection.AUTH_KEYS[k]] == []


def test_the_module_layer_passes_auth_suboptions_and_their_no_log():
    from ansible_collections.savepoint.virt.plugins.module_utils._module import connection_spec
    spec = connection_spec([os_backend.OpenStackBackend])
    assert spec['auth']['options']['password'] == {'type': 'str', 'no_log': True}
    assert spec['auth']['no_log'] is False and spec['cloud']['type'] == 'raw'


PASSWORD = 'S3cr3t-in-the-url'


def _ksa_connect_failure():
    from keystoneauth1 import exceptions as ksa
    url = 'http://admin:%s@127.0.0.1:9/v3/auth/tokens?token=%s' % (PASSWORD, PASSWORD)
    return _wrapped(ksa.ConnectFailure('Unable to establish connection to %s: HTTPConnectionPool(host=127.0.0.1, '
                                       'port=9): Max retries exceeded with url: %s (Caused by NewConnectionError: '
                                       '[Errno 111] Connection refused)' % (url, url)))


def _all_text(err):
    return ' '.join(str(x) for x in (err.msg, err.provider_message, err.details, err.to_result()))


def test_keystoneauth_urls_lose_userinfo_and_query():
    err = errors.translate(_ksa_connect_failure(), 'connecting to OpenStack', ConnectionFailedError)
    assert PASSWORD not in _all_text(err) and 'admin' not in _all_text(err)
    assert err.msg == ('connecting to OpenStack: cannot reach the OpenStack endpoint '
                       'http://127.0.0.1:9/v3/auth/tokens: connection refused')


def test_service_response_bodies_and_request_urls_never_reach_the_message():
    import requests
    body = '<html><body>Internal error, debug: password=%s</body></html>' % PASSWORD
    response = requests.Response()
    response.status_code = 500
    response.url = 'https://u:%s@nova.example.test/v2.1/servers?secret=%s' % (PASSWORD, PASSWORD)
    response.headers['Content-Type'] = 'text/html'
    response._content = body.encode()  # pylint: disable=protected-access
    with pytest.raises(os_exc.HttpException) as raised:
        os_exc.raise_from_response(response)
    assert PASSWORD in raised.value.details  # what the old message copied
    err = errors.translate(raised.value, 'rebuilding server x')
    assert PASSWORD not in _all_text(err) and 'nova.example.test' not in _all_text(err)
    assert err.msg == 'rebuilding server x failed (HTTP 500): Internal Server Error'
    # a JSON answer's short message is the service's reason, kept
    response._content = b'{"conflictingRequest": {"message": "Cannot rebuild while task_state rebuilding"}}'
    response.headers['Content-Type'] = 'application/json'
    response.status_code = 409
    with pytest.raises(os_exc.HttpException) as raised:
        os_exc.raise_from_response(response)
    err = errors.translate(raised.value, 'rebuilding server x')
    assert err.msg == 'rebuilding server x failed (HTTP 409): Cannot rebuild while task_state rebuilding'
    assert PASSWORD not in _all_text(err)


@pytest.mark.parametrize('url,clean', [
    ('https://user:pw@keystone.example.test:5000/v3?x=pw#pw', 'https://keystone.example.test:5000/v3'),
    ('http://[::1]:5000/v3', 'http://[::1]:5000/v3'),
    ('http://127.0.0.1:5000', 'http://127.0.0.1:5000'),
])
def test_scrub_url(url, clean):
    assert errors.scrub_url(url) == clean
    assert errors.scrub('at %s: refused' % url) == 'at %s: refused' % clean


def test_steps_are_dispatched_by_type_never_by_string():
    from ansible_collections.savepoint.virt.plugins.module_utils._errors import ProviderError as Err
    from ansible_collections.savepoint.virt.plugins.module_utils._model import Guest
    from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation
    op = Operation(action='create', guest=Guest(id='x', name='x'), snapshot_name='s', handle={'step': 'create'})
    with pytest.raises(Err, match='unknown create operation'):
        os_backend.OpenStackBackend({}).poll(op)


# -- connection options -> openstacksdk configuration (no service contacted) ------------------

CLOUDS = """
clouds:
  devstack:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: demo
      password: %s
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    verify: false
""" % PASSWORD


@pytest.fixture
def awx_clouds(tmp_path, monkeypatch):
    """As AWX's OpenStack credential hands it over: OS_CLIENT_CONFIG_FILE with one cloud, no OS_CLOUD."""
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)
    path = tmp_path / 'clouds.yaml'
    path.write_text(CLOUDS)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(path))
    return path


def _region(conn):
    import openstack.config
    settings = connection.Settings(conn)
    return settings, openstack.config.get_cloud_region(**settings.sdk_kwargs())


def test_verify_from_clouds_yaml_is_kept_unless_validate_certs_is_given(awx_clouds):
    settings, region = _region({})
    assert 'verify' not in settings.sdk_kwargs() and region.config['verify'] is False
    settings, region = _region({'validate_certs': True})
    assert settings.sdk_kwargs()['verify'] is True and region.config['verify'] is True
    settings, region = _region({'validate_certs': False, 'ca_cert': '/etc/ssl/ca.pem'})
    assert region.config['verify'] is False and settings.sdk_kwargs()['cacert'] == '/etc/ssl/ca.pem'


def test_the_cloud_chosen_from_clouds_yaml_is_named_as_such(awx_clouds):
    settings, region = _region({})
    where = connection.describe_region(region, settings)
    assert where == "cloud 'devstack' (the only cloud in clouds.yaml) at http://127.0.0.1:5000/v3"
    assert 'OS_*' not in where and PASSWORD not in where


def test_the_cloud_from_the_environment_is_named_as_such(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(tmp_path / 'none.yaml'))
    monkeypatch.setenv('OS_AUTH_URL', 'http://u:%s@127.0.0.1:5000/v3' % PASSWORD)
    monkeypatch.setenv('OS_USERNAME', 'demo')
    settings, region = _region({})
    assert connection.describe_region(region, settings) == (
        'the cloud from the OS_* environment at http://127.0.0.1:5000/v3')


def test_client_certificates_and_sdk_logging_options(awx_clouds, tmp_path):
    settings, region = _region({'client_cert': '/etc/pki/me.pem', 'client_key': '/etc/pki/me.key',
                                'sdk_log_path': str(tmp_path / 'sdk.log'), 'sdk_log_level': 'DEBUG'})
    assert settings.sdk_kwargs()['cert'] == '/etc/pki/me.pem' and settings.sdk_kwargs()['key'] == '/etc/pki/me.key'
    assert region.config['cert'] == '/etc/pki/me.pem' and region.config['key'] == '/etc/pki/me.key'
    assert settings.log_path.endswith('sdk.log') and settings.log_level == 'DEBUG'
    with pytest.raises(InvalidRequestError, match='client_key needs client_cert'):
        connection.Settings({'client_key': '/etc/pki/me.key'})
    with pytest.raises(InvalidRequestError, match='sdk_log_level'):
        connection.Settings({'sdk_log_level': 'TRACE'})


def test_cloud_as_a_dict(awx_clouds):
    cloud = {'auth': {'auth_url': 'http://127.0.0.1:5000/v3', 'username': 'demo', 'password': PASSWORD,
                      'project_name': 'demo'}, 'region_name': 'RegionOne', 'verify': False}
    settings, region = _region({'cloud': cloud})
    assert region.config['auth']['username'] == 'demo' and region.config['verify'] is False
    assert settings.given_where() == 'the cloud at http://127.0.0.1:5000/v3'
    assert os_backend.OpenStackBackend.secret_values({'cloud': cloud}) == [PASSWORD]
    assert os_backend.OpenStackBackend.secret_values({'cloud': 'devstack'}) == []
    with pytest.raises(InvalidRequestError, match='auth, region_name cannot be given beside it'):
        connection.Settings({'cloud': cloud, 'auth': {'password': 'x'}, 'region_name': 'R'})


@pytest.mark.parametrize('conn,message', [
    ({'cloud': ''}, 'cloud must name a cloud'),
    ({'cloud': 42}, 'not int'),
    ({'region_name': ''}, 'region_name must not be an empty string'),
    ({'sdk_log_path': ''}, 'sdk_log_path must not be an empty string'),
])
def test_bad_connection_options_are_refused_before_anything_is_contacted(conn, message):
    with pytest.raises(InvalidRequestError, match=message):
        os_backend.OpenStackBackend(conn)


def test_volume_snapshots_of_an_include_volumes_image_are_only_read_from_owned_images():
    own = image(savepoint_image_id='img-new', savepoint_volume_snapshots='vs-1,vs-2', savepoint_include_volumes='true')
    assert images.included_snapshot_ids(own) == ['vs-1', 'vs-2']
    # Nova copies these properties into a hand-made snapshot of a server reverted to `own`: never ours.
    inherited = image(savepoint_image_id='img-old', savepoint_volume_snapshots='vs-1,vs-2')
    assert images.included_snapshot_ids(inherited) == []
    assert images.included_snapshot_ids(image(savepoint_image_id='img-new', savepoint_volume_snapshots='')) == []


def test_cinder_latest_is_compared_to_the_second():
    assert volumes.cinder_time('2026-11-25T15:00:01.000000') == volumes.cinder_time('2026-11-25T15:00:01')
    assert volumes.cinder_time('2026-11-25T15:00:02') > volumes.cinder_time('2026-11-25T15:00:01.999999')
    assert volumes.MAX_VOLUMES * 37 <= images.MAX_VALUE


@pytest.mark.parametrize('asked,has,conflict', [
    (True, False, 'include_volumes: true'), (False, True, 'include_volumes: false'), (True, True, None),
    (False, False, None), (None, False, None)])
def test_include_volumes_takes_part_in_the_conflict_check(asked, has, conflict):
    from ansible_collections.savepoint.virt.plugins.module_utils._model import SnapshotRecord, SnapshotSpec
    existing = SnapshotRecord(name='s', id='img', provider_details={'include_volumes': has})
    spec = SnapshotSpec(name='s', options={'include_volumes': asked})
    found = os_backend.OpenStackBackend({}).option_conflicts(existing, spec)
    if conflict is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(conflict)


class _MetadataCompute:
    """Records the server-metadata writes the backend sends (pure logic: which keys go back how)."""

    def __init__(self):
        self.calls = []

    def set_server_metadata(self, server_id, **metadata):
        self.calls.append(('set', server_id, metadata))

    def delete_server_metadata(self, server_id, keys):
        self.calls.append(('delete', server_id, sorted(keys)))


@pytest.mark.parametrize('previous,calls', [
    # the server had a current snapshot: both keys are written back as they were
    ({images.M_CURRENT: 'img-old', images.M_CURRENT_BASE: BASE},
     [('set', SERVER, {images.M_CURRENT: 'img-old', images.M_CURRENT_BASE: BASE})]),
    # its first snapshot failed: the keys the create added are removed, nothing else is touched
    ({images.M_CURRENT: '', images.M_CURRENT_BASE: ''},
     [('delete', SERVER, sorted([images.M_CURRENT, images.M_CURRENT_BASE]))]),
    # boot from volume: the base is '' (no image), the pointer itself is put back
    ({images.M_CURRENT: 'img-old', images.M_CURRENT_BASE: ''},
     [('set', SERVER, {images.M_CURRENT: 'img-old'}), ('delete', SERVER, [images.M_CURRENT_BASE])]),
])
def test_a_failed_create_puts_the_current_pointer_back_as_it_was(previous, calls):
    class Server:
        metadata = {k: v for k, v in previous.items() if v}
    assert images.current_pointer(Server()) == previous
    backend = os_backend.OpenStackBackend({})
    backend.conn = type('Conn', (), {'compute': _MetadataCompute()})()
    backend._put_back_current(SERVER, previous)
    assert backend.conn.compute.calls == calls


def test_a_server_read_beside_another_call_gives_the_server_or_the_same_error_as_a_read_in_line():
    """_server_meanwhile (the create reads the server beside its image mark): the result, or the error a
    read in line would raise, in the caller's thread, once the caller asks for it."""
    class Compute:
        def get_server(self, server_id):
            if server_id == 'gone':
                raise os_exc.NotFoundException('No Server found for gone')
            return type('Server', (), {'id': server_id, 'metadata': {'savepoint_lease': 'x'}})()

    backend = os_backend.OpenStackBackend({})
    backend.conn = type('Conn', (), {'compute': Compute()})()
    assert backend._server_meanwhile(SERVER)().id == SERVER
    pending = backend._server_meanwhile('gone')
    with pytest.raises(ProviderError) as beside:
        pending()
    with pytest.raises(ProviderError) as in_line:
        backend._server('gone')
    assert type(beside.value) is type(in_line.value)
    assert beside.value.msg == in_line.value.msg and 'reading server gone' in beside.value.msg

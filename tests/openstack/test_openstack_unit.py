"""Pure logic of the OpenStack backend (no services needed, but marked like every OpenStack test):
which images count as this collection's, error translation, volume snapshots of an image."""

from __future__ import annotations

import pytest
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as os_exc

from ansible_collections.savepoint.virt.plugins.module_utils._backends import openstack as backend
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    AuthenticationError, CertificateError, ConnectionFailedError, GuestNotFoundError, InvalidRequestError,
    ProviderError,
)

pytestmark = pytest.mark.openstack

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
    assert backend._owned(image(**props)) is owned


def test_volume_snapshots_of_an_image():
    bdm = '[{"snapshot_id": "s1", "boot_index": 0}, {"snapshot_id": null}, {"source_type": "image"}]'
    assert backend._bdm_snapshot_ids({'block_device_mapping': bdm}) == ['s1']
    assert backend._bdm_snapshot_ids({'block_device_mapping': 'not json'}) == []
    assert backend._bdm_snapshot_ids({}) == []


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
    err = backend.translate(exc, 'doing it', GuestNotFoundError)
    assert type(err) is kind  # pylint: disable=unidiomatic-typecheck
    assert err.msg.startswith('doing it')


def test_http_errors_keep_the_service_message_and_status():
    err = backend.translate(os_exc.HttpException('Cannot rebuild', details='Cannot rebuild, task state',
                                                 http_status=409), 'rebuilding')
    assert 'HTTP 409' in err.msg and 'Cannot rebuild, task state' in err.msg
    assert err.details == {'http_status': 409}


def test_connection_options_match_openstack_cloud():
    options = backend.OpenStackBackend.connection_options
    assert set(options) == {'cloud', 'auth', 'auth_type', 'region_name', 'interface', 'validate_certs', 'ca_cert',
                            'api_timeout', 'boot_from_volume_revert'}
    assert options['auth']['no_log'] is True and options['cloud']['env'] == ['OS_CLOUD']
    assert options['interface']['default'] == 'public'
    assert backend.OpenStackBackend({}).validate_certs is True
    assert backend.OpenStackBackend({'validate_certs': 'no'}).validate_certs is False
    assert options['boot_from_volume_revert']['default'] == 'refuse'
    with pytest.raises(InvalidRequestError):
        backend.OpenStackBackend({'auth': 'user:password'})
    with pytest.raises(InvalidRequestError):
        backend.OpenStackBackend({'boot_from_volume_revert': 'yes'})


def test_volume_snapshots_of_an_include_volumes_image_are_only_read_from_owned_images():
    own = image(savepoint_image_id='img-new', savepoint_volume_snapshots='vs-1,vs-2', savepoint_include_volumes='true')
    assert backend._included_snapshot_ids(own) == ['vs-1', 'vs-2']
    # Nova copies these properties into a hand-made snapshot of a server reverted to `own`: never ours.
    inherited = image(savepoint_image_id='img-old', savepoint_volume_snapshots='vs-1,vs-2')
    assert backend._included_snapshot_ids(inherited) == []
    assert backend._included_snapshot_ids(image(savepoint_image_id='img-new', savepoint_volume_snapshots='')) == []


def test_cinder_latest_is_compared_to_the_second():
    assert backend._cinder_time('2026-11-25T15:00:01.000000') == backend._cinder_time('2026-11-25T15:00:01')
    assert backend._cinder_time('2026-11-25T15:00:02') > backend._cinder_time('2026-11-25T15:00:01.999999')
    assert backend.MAX_VOLUMES * 37 <= backend.MAX_VALUE


@pytest.mark.parametrize('asked,has,conflict', [
    (True, False, 'include_volumes: true'), (False, True, 'include_volumes: false'), (True, True, None),
    (False, False, None), (None, False, None)])
def test_include_volumes_takes_part_in_the_conflict_check(asked, has, conflict):
    from ansible_collections.savepoint.virt.plugins.module_utils._model import SnapshotRecord, SnapshotSpec
    existing = SnapshotRecord(name='s', id='img', provider_details={'include_volumes': has})
    found = backend.OpenStackBackend({}).option_conflicts(existing, SnapshotSpec(name='s',
                                                                                 options={'include_volumes': asked}))
    if conflict is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(conflict)

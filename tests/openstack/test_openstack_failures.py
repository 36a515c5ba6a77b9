"""Clear errors: wrong credentials, unreachable endpoint, unknown cloud, and a Nova service
that stops in the middle of a wait (nova-compute), which must fail within the timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    AuthenticationError, ConnectionFailedError, PartialFailureError, UnsupportedError, WaitTimeoutError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

from contract.harness_openstack import Runner
from deadlines import upper_bound


pytestmark = pytest.mark.openstack

SECRET = 'Wr0ng-pw-never-printed'


def _all_text(exc):
    return ' '.join(str(x) for x in (exc.msg, exc.provider_message, exc.details, exc.to_result()))


def test_wrong_password_is_an_authentication_error_without_the_secret(stack):
    backend = OpenStackBackend({'cloud': 'stack-demo', 'auth': {'password': SECRET}})
    with pytest.raises(AuthenticationError) as err:
        backend.connect()
    assert "cloud 'stack-demo'" in err.value.msg and '401' in err.value.msg
    assert err.value.kind == 'authentication_failed'
    assert SECRET not in _all_text(err.value)


@pytest.mark.parametrize('auth_type', ['v3token', 'token'])
def test_wrong_token_is_an_authentication_error_without_the_token(stack, auth_type):
    # Keystone answers an unreadable token with 404 ("Could not recognize Fernet token"), not 401.
    token = 'gAAAAABwrong-token-never-printed'
    auth = {'auth_url': 'http://127.0.0.1:5000/v3', 'token': token, 'project_name': 'demo',
            'project_domain_name': 'Default'}
    with pytest.raises(AuthenticationError) as err:
        OpenStackBackend({'auth': auth, 'auth_type': auth_type}).connect()
    assert err.value.kind == 'authentication_failed', err.value.msg
    assert 'Keystone refused the credentials (HTTP 404)' in err.value.msg and 'token' in err.value.msg
    assert token not in _all_text(err.value)


def test_explicit_auth_with_a_wrong_user_fails_the_same_way(stack):
    auth = {'auth_url': 'http://127.0.0.1:5000/v3', 'username': 'nobody', 'password': SECRET,
            'project_name': 'demo', 'user_domain_name': 'Default', 'project_domain_name': 'Default'}
    with pytest.raises(AuthenticationError) as err:
        OpenStackBackend({'auth': auth, 'auth_type': 'password'}).connect()
    assert SECRET not in _all_text(err.value)


def test_unreachable_endpoint_is_a_connection_error(stack):
    # userinfo in auth_url (as clouds.yaml files sometimes have it): keystoneauth's text holds the whole URL
    auth = {'auth_url': 'http://someone:%s@127.0.0.1:9/v3?token=%s' % (SECRET, SECRET), 'username': 'demo',
            'password': SECRET,
            'project_name': 'demo', 'user_domain_name': 'Default', 'project_domain_name': 'Default'}
    api_timeout = 5
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as err:
        OpenStackBackend({'auth': auth, 'auth_type': 'password', 'api_timeout': api_timeout}).connect()
    assert time.monotonic() - started < upper_bound(api_timeout)  # refused: no retry loop past api_timeout
    assert not isinstance(err.value, AuthenticationError) and err.value.kind == 'connection_failed'
    assert 'cannot reach the OpenStack endpoint http://127.0.0.1:9/v3' in err.value.msg, err.value.msg
    assert SECRET not in _all_text(err.value) and 'someone' not in _all_text(err.value)


def test_endpoint_that_never_answers_fails_within_api_timeout(stack):
    """A listener that accepts and never answers (a hung Keystone): bounded by api_timeout."""
    with socket.socket() as hung:
        hung.bind(('127.0.0.1', 0))
        hung.listen(8)
        auth = {'auth_url': 'http://127.0.0.1:%d/v3' % hung.getsockname()[1], 'username': 'demo',
                'password': SECRET, 'project_name': 'demo', 'user_domain_name': 'Default',
                'project_domain_name': 'Default'}
        api_timeout = 2
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError, match='timed out') as err:
            OpenStackBackend({'auth': auth, 'auth_type': 'password', 'api_timeout': api_timeout}).connect()
        took = time.monotonic() - started
        # it waited for the hung answer (api_timeout), then gave up instead of hanging
        assert api_timeout <= took < upper_bound(api_timeout), took
    assert SECRET not in _all_text(err.value)


def test_unknown_cloud_or_region_is_a_clear_error(stack):
    with pytest.raises(ConnectionFailedError, match='no-such-cloud'):
        OpenStackBackend({'cloud': 'no-such-cloud'}).connect()
    with pytest.raises(ConnectionFailedError, match='Region Nowhere is not a valid region'):
        OpenStackBackend({'cloud': 'stack-demo', 'region_name': 'Nowhere'}).connect()


def test_nova_compute_stopped_mid_wait_fails_within_the_timeout(stack, servers, sdk, runner):
    """With nova-compute gone (the API still believes it is up) a revert and a create are accepted
    by nova-api and then never finish: both must fail clearly at the deadline, nothing reported as
    done, and the unfinished snapshot image must not be left behind. The create moves the server's
    current-snapshot pointer at its first poll (the image is still queued then): it must be put back."""
    reverted_server, created_server, third = servers.boot(), servers.boot(), servers.boot()
    a, b, c = GuestRef(id=reverted_server.id), GuestRef(id=created_server.id), GuestRef(id=third.id)
    runner.run('present', a, 'base')
    before = runner.run('present', b, 'before')['snapshot']['id']
    runner.run('present', c, 'base')
    short = Runner(timeout=6)
    stack.stop_service('nova-compute')
    try:
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as err:
            short.run('reverted', a, 'base')
        took = time.monotonic() - started
        assert short.timeout <= took < upper_bound(short.timeout), took  # it waited until the deadline, no longer
        assert 'did not finish within 6s' in err.value.msg and 'guest %s ' % reverted_server.name in err.value.msg
        assert err.value.details['results'][0]['action'] == 'failed'

        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as err:
            short.run('present', b, 'never-finished')
        took = time.monotonic() - started
        assert short.timeout <= took < upper_bound(short.timeout), took
        assert 'was deleted, so no half-made restore point remains' in err.value.provider_message
        snaps = short.snapshots(b)
        assert sorted(snaps) == ['before'] and snaps['before'].current is True
        assert sdk.compute.get_server(created_server.id).metadata['savepoint_current'] == before
        assert not [i for i in sdk.image.images(owner=sdk.current_project_id)
                    if i.name == 'never-finished' and i.status != 'deleted']

        # Now nova-api goes away too, in the middle of a (long) wait: the wait ends at once,
        # as a connection error that says the revert may still be running.
        long_wait = Runner(timeout=120)

        def stop_nova_api_once_rebuilding():
            # Not after a fixed delay: on a loaded machine the revert may not have reached its wait
            # by then. REBUILD means nova-api accepted the rebuild, so the engine is (about to be) waiting.
            deadline = time.monotonic() + long_wait.timeout
            while sdk.compute.get_server(third.id).status != 'REBUILD' and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # let nova-api's answer to the rebuild reach the engine
            stack.stop_service('nova-api')
        stopper = threading.Thread(target=stop_nova_api_once_rebuilding)
        stopper.start()
        started = time.monotonic()
        try:
            with pytest.raises(ConnectionFailedError) as err:
                long_wait.run('reverted', c, 'base')
        finally:
            stopper.join()
        assert time.monotonic() - started < long_wait.timeout / 2  # ended when nova-api went, not at the deadline
        assert err.value.msg.startswith("waiting for the revert of snapshot 'base' on server '%s' failed" % third.name)
        assert 'cannot reach the OpenStack endpoint' in err.value.msg and 'check before retrying' in err.value.msg
    finally:
        stack.start_service('nova-compute')


def test_reverting_a_set_with_one_paused_server_touches_no_server(servers, sdk, runner):
    good, bad = servers.boot(), servers.boot()
    runner.run('present', [GuestRef(id=good.id), GuestRef(id=bad.id)], 'set')
    sdk.compute.pause_server(bad)
    sdk.compute.wait_for_server(bad, status='PAUSED', interval=0.5, wait=60)
    with pytest.raises(UnsupportedError, match="'%s' is PAUSED" % bad.name):
        runner.run('reverted', [GuestRef(id=good.id), GuestRef(id=bad.id)], 'set')
    after = sdk.compute.get_server(good.id)
    assert after.image.id == good.image.id and after.status == 'ACTIVE' and after.task_state is None


def test_a_snapshot_set_that_fails_on_one_server_is_rolled_back(stack, servers, sdk, runner):
    """Nova refuses createImage of a server in ERROR (set up as admin): the set is rolled back,
    so the healthy server keeps no half of it."""
    good, broken = servers.boot(), servers.boot()
    admin = stack.connect('stack-admin')
    try:
        admin.compute.reset_server_state(broken.id, 'error')
    finally:
        admin.close()
    with pytest.raises(PartialFailureError) as err:
        runner.run('present', [GuestRef(id=good.id), GuestRef(id=broken.id)], 'set')
    assert 'rolled back' in err.value.msg and broken.name in err.value.msg
    results = {r['guest']['id']: r for r in err.value.details['results']}
    assert results[broken.id]['action'] == 'failed' and results[good.id].get('rolled_back') is True
    assert runner.snapshots(GuestRef(id=good.id)) == {}
    assert runner.snapshots(GuestRef(id=broken.id)) == {}

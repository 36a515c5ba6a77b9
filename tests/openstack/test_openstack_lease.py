"""The per-guest lease of _locking.py in a server's metadata (key savepoint_lease), on the real stack:
written and read back under a run, removed after it, never written in check mode, shortened to Nova's
255 characters, and a locked server gives a clear error with nothing changed.
The two-process cases are in tests/safety/test_concurrency.py."""

from __future__ import annotations

import math
import traceback

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import lease as lease_module
from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._errors import InvalidRequestError, SavepointError
from ansible_collections.savepoint.virt.plugins.module_utils._locking import Lease, LeaseKeeper
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

from contract.harness_openstack import connection

#: a max_age no read is too old for: the freshness by age is checked with 0.0, not bounded by the test's speed
ANY_AGE = math.inf

pytestmark = pytest.mark.openstack
KEY = lease_module.M_LEASE


def metadata(sdk, server):
    return dict(sdk.compute.get_server(server.id).metadata or {})


def test_a_run_holds_the_lease_in_the_server_metadata_and_removes_it(servers, sdk, runner, monkeypatch):
    server = servers.boot()
    seen = []
    real_create = OpenStackBackend.start_create

    def spy(self, guest, spec):
        seen.append(metadata(sdk, server).get(KEY))
        return real_create(self, guest, spec)

    monkeypatch.setattr(OpenStackBackend, 'start_create', spy)
    result = runner.run('present', GuestRef(name=server.name), 'leased')
    assert result['results'][0]['action'] == 'created', result['msg']
    held = Lease.decode(seen[0])
    assert held is not None and 'pid' in held.who and len(seen[0]) <= 255
    assert KEY not in metadata(sdk, server), 'the lease was left behind'


def test_check_mode_writes_no_lease_and_warns_about_a_live_one(servers, sdk, runner):
    server = servers.boot()
    with OpenStackBackend(connection()) as backend:
        other = LeaseKeeper(backend, timeout=60)
        guest = backend.find_guest(GuestRef(name=server.name))
        other.acquire([guest])
        try:
            before = metadata(sdk, server)[KEY]
            result = runner.run('present', GuestRef(name=server.name), 'checked', check_mode=True)
            assert metadata(sdk, server)[KEY] == before, 'check mode wrote a lease'
            assert any('in use by' in w and other.run in w for w in result['warnings']), result['warnings']
        finally:
            other.release()
    assert KEY not in metadata(sdk, server)
    assert 'checked' not in runner.snapshots(GuestRef(name=server.name))


def test_a_lease_longer_than_nova_allows_is_refused_before_writing(servers, sdk):
    server = servers.boot()
    with OpenStackBackend(connection()) as backend:
        guest = backend.find_guest(GuestRef(name=server.name))
        with pytest.raises(InvalidRequestError, match='at most 255'):
            backend.write_lease(guest, 'x' * 256)
        backend.write_lease(guest, 'y' * 255)  # the limit itself is Nova's, accepted
        assert backend.read_lease(guest) == 'y' * 255
        backend.write_lease(guest, None)
        backend.write_lease(guest, None)  # removing a lease that is not there is fine
        assert backend.read_lease(guest) is None
    assert KEY not in metadata(sdk, server)


def test_a_locked_server_is_a_clear_error_with_nothing_written(servers, sdk, stack):
    server = servers.boot()
    admin = stack.connect('stack-admin')
    try:
        # locked by an admin: the project member cannot unlock it, nor write its metadata
        admin.compute.lock_server(server.id)
        with OpenStackBackend(connection()) as backend:
            guest = backend.find_guest(GuestRef(name=server.name))
            with pytest.raises(SavepointError) as err:
                backend.write_lease(guest, 'z')
        assert 'locked' in err.value.msg and server.name in err.value.msg, err.value.msg
        assert 'nothing was changed' in err.value.msg
    finally:
        admin.compute.unlock_server(server.id)
        admin.close()
    assert KEY not in metadata(sdk, server)


def test_a_user_the_policy_forbids_metadata_writes_gets_a_clear_error(servers, sdk, stack):
    """A project reader (Nova's default policy: may read servers, not write their metadata) is told
    which rule refuses the lease, before anything is written."""
    import uuid

    import yaml
    server = servers.boot()
    admin = stack.connect('stack-admin')
    auth_url = yaml.safe_load(stack.clouds_yaml.read_text())['clouds']['stack-demo']['auth']['auth_url']
    name, password = 'sp-reader-%s' % uuid.uuid4().hex[:8], uuid.uuid4().hex
    project = admin.identity.find_project('demo', domain_id='default', ignore_missing=False)
    user = admin.identity.create_user(name=name, password=password, domain_id='default',
                                      default_project_id=project.id)
    try:
        admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role('reader'))
        auth = {'auth_url': auth_url, 'username': name, 'password': password, 'project_name': 'demo',
                'user_domain_name': 'Default', 'project_domain_name': 'Default'}
        with OpenStackBackend({'auth': auth, 'auth_type': 'password'}) as backend:
            guest = backend.find_guest(GuestRef(name=server.name))
            with pytest.raises(SavepointError) as err:
                backend.write_lease(guest, 'r')
        assert 'HTTP 403' in err.value.msg and 'os_compute_api:server-metadata' in err.value.msg, err.value.msg
        assert server.name in err.value.msg and 'nothing was changed' in err.value.msg
    finally:
        admin.identity.delete_user(user)
        admin.close()
    assert KEY not in metadata(sdk, server)


def test_the_release_after_a_create_uses_the_last_polls_server_read(servers, sdk, runner, monkeypatch):
    """The create's last poll read the server (metadata included) moments before: the release removes the
    lease on that read instead of reading the server once more, and the lease is gone."""
    server = servers.boot()
    from_release = []
    real_read = OpenStackBackend.read_lease

    def spy(self, guest):
        from_release.append(any(frame.name == 'release' for frame in traceback.extract_stack()))
        return real_read(self, guest)

    monkeypatch.setattr(OpenStackBackend, 'read_lease', spy)
    result = runner.run('present', GuestRef(name=server.name), 'released')
    assert result['results'][0]['action'] == 'created', result['msg']
    assert from_release and not any(from_release), 'the release read the lease again'
    assert KEY not in metadata(sdk, server), 'the lease was left behind'


def test_a_server_read_says_nothing_about_the_lease_once_a_lease_was_written_or_it_is_old(servers, sdk):
    server = servers.boot()
    with OpenStackBackend(connection()) as backend:
        guest = backend.find_guest(GuestRef(id=server.id))
        assert backend.recent_lease(guest, ANY_AGE) == (True, None)  # the lookup by id read the server: no lease
        backend.write_lease(guest, 'mine')
        assert backend.recent_lease(guest, ANY_AGE) == (False, None), 'a read from before the write was offered'
        assert backend.read_lease(guest) == 'mine'
        assert backend.recent_lease(guest, ANY_AGE) == (True, 'mine')
        assert backend.recent_lease(guest, 0.0) == (False, None), 'a read older than max_age was offered'
        sdk.compute.delete_server_metadata(server.id, [KEY])  # by hand: only a new read tells
        assert backend.read_lease(guest) is None
        assert backend.recent_lease(guest, ANY_AGE) == (True, None)

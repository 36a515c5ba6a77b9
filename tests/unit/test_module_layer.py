"""The module layer (_module.py) without Ansible running it: guest refs, request building, failures."""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils import _module
from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._errors import InvalidRequestError, SavepointError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef
from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS


def params(**given):
    """Module params as AnsibleModule leaves them: every spec option present, unset ones None."""
    spec = _module.snapshot_argument_spec(BACKENDS, with_provider=True)
    values = {name: entry.get('default') for name, entry in spec.items()}
    values.update(given)
    return values


def test_every_module_accepts_every_providers_connection_options():
    for backends in [(b,) for b in BACKENDS] + [BACKENDS]:
        for spec in (_module.snapshot_argument_spec(backends), _module.info_argument_spec(backends)):
            for backend in BACKENDS:
                assert set(backend.connection_options) <= set(spec)
            assert 'include_volumes' in spec and 'moid' in spec and 'server_id' in spec


def test_task_options_have_no_spec_default_so_a_given_one_is_seen():
    spec = _module.snapshot_argument_spec(BACKENDS)
    for option in ('power_state', 'quiesce', 'kind', 'description', 'owner', 'timeout', 'wait', 'remove_children'):
        assert spec[option].get('default') is None, option


def test_request_resolves_documented_defaults():
    request = _module.build_request(params(name='web', snapshot_name='s'), LibvirtBackend, 'libvirt_snapshot')
    assert (request.spec.quiesce, request.spec.kind, request.spec.description, request.owner, request.timeout) == (
        'never', 'internal', '', 'savepoint.virt', 600.0)
    assert request.spec.marker.created_by == 'savepoint.virt.libvirt_snapshot'
    assert request.guests == [GuestRef(name='web')]


def test_request_normalises_a_trailing_newline_of_the_description():
    request = _module.build_request(params(name='web', snapshot_name='s', description='line\n'), LibvirtBackend, 'x')
    assert request.spec.description == 'line'


@pytest.mark.parametrize('given,words', [
    ({'state': 'present', 'power_state': 'restore'}, ['power_state', 'state=present']),
    ({'state': 'pruned', 'snapshot_name': None, 'older_than': '7'}, ['older_than', 'no unit']),
    ({'state': 'present', 'owner': ''}, ['owner', 'empty']),
    ({'state': 'present', 'uri': ''}, ['uri', 'empty']),
    ({'state': 'present', 'moid': 'vm-1', 'name': None}, ["'moid'", 'libvirt']),
    ({'state': 'present', 'name': None, 'guests': [{'moid': 'vm-1'}]}, ["'moid'", 'libvirt']),
    ({'state': 'present', 'name': None, 'guests': []}, ['guests']),
])
def test_bad_requests_name_the_option(given, words):
    base = {'name': 'web', 'snapshot_name': 's'}
    base.update(given)
    with pytest.raises(InvalidRequestError) as err:
        _module.build_request(params(**base), LibvirtBackend, 'libvirt_snapshot')
    for word in words:
        assert word in err.value.msg


@pytest.mark.parametrize('backend,keys', [
    (LibvirtBackend, {'name', 'uuid'}), (VmwareBackend, {'name', 'uuid', 'id', 'moid', 'folder'}),
    (OpenStackBackend, {'name', 'uuid', 'id', 'server_id'}),
])
def test_guests_entry_keys_per_provider(backend, keys):
    assert set(_module.entry_keys(backend)) == keys


def test_folder_narrows_every_guests_entry_on_vmware():
    refs = _module.guest_refs(params(guests=['a', {'moid': 'vm-2'}], folder='/DC0/vm/x'), VmwareBackend)
    assert refs == [GuestRef(name='a', folder='/DC0/vm/x'), GuestRef(id='vm-2', folder='/DC0/vm/x')]


class FakeModule:
    def __init__(self):
        self.failed = None

    def fail_json(self, **result):
        self.failed = result


def test_an_unexpected_exception_becomes_a_clear_message_without_userinfo():
    error = _module.unexpected(RuntimeError('GET qemu+tcp://admin:hunter2@host/system failed'), 'talking to libvirt')
    assert 'unexpected error while talking to libvirt: RuntimeError' in error.msg
    assert 'hunter2' not in error.msg and '***@host' in error.msg


def test_failure_mapping_keeps_results_and_progress():
    module = FakeModule()
    err = SavepointError('boom', details={'results': [{'changed': True}], 'guest': 'x'})
    err.traceback_text = 'Traceback (most recent call last): ...'
    _module.fail(module, err, ['still waiting'])
    assert module.failed['msg'] == 'boom' and module.failed['changed'] is True
    assert module.failed['results'] == [{'changed': True}] and module.failed['error_details'] == {'guest': 'x'}
    assert module.failed['progress'] == ['still waiting'] and 'Traceback' in module.failed['exception']
    assert 'Traceback' not in module.failed['msg']


def test_other_providers_connection_options_are_ignored_even_when_empty():
    request = _module.build_request(params(name='web', snapshot_name='s', hostname='', cloud=''), LibvirtBackend, 'x')
    assert request.guests == [GuestRef(name='web')]
    with pytest.raises(InvalidRequestError, match='hostname must not be empty'):
        _module.build_request(params(name='web', snapshot_name='s', hostname=''), VmwareBackend, 'x')

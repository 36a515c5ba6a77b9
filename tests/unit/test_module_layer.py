"""The module layer (_module.py) without Ansible running it: guest refs, request building, failures."""

from __future__ import annotations

import json
import uuid
from unittest import mock

import libvirt
import pytest
from ansible.module_utils import basic

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


# -- the whole module run (main_for) on libvirt's test driver, in this process ----------------------------
# AnsibleModule reads its arguments, exits with JSON on stdout and masks no_log values as it does under
# ansible-playbook; the guests live in libvirt's in-memory test driver (test:///default), which keeps its
# state while a connection of this process is open (the fixture holds one).

TEST_URI = 'test:///default'


def module_args(args: dict):
    """Expose ``args`` to AnsibleModule, on every ansible-core of the version matrix (2.16 has no testing helper)."""
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        return mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    return patch_module_args(args)


def run_module(capsys, backends, module_name, info=False, neutral=False, **args):
    """One module run: the JSON it printed, and whether it failed (its exit code)."""
    args.setdefault('uri', TEST_URI)
    with module_args(args), pytest.raises(SystemExit) as exited:
        _module.main_for(backends, module_name, info=info, neutral=neutral)
    result = json.loads(capsys.readouterr().out)
    assert (exited.value.code != 0) == bool(result.get('failed')), result
    return result


@pytest.fixture
def test_driver_guest():
    conn = libvirt.open(TEST_URI)
    name = 'module-layer-%s' % uuid.uuid4().hex[:8]
    dom = conn.defineXML("<domain type='test'><name>%s</name><memory unit='MiB'>64</memory>"
                         "<os><type arch='x86_64'>hvm</type></os></domain>" % name)
    dom.create()
    try:
        yield dom
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        conn.close()


def snapshot_names(dom) -> list:
    return sorted(s.getName() for s in dom.listAllSnapshots())


LIBVIRT_ONLY = (LibvirtBackend,)


def test_module_takes_a_snapshot_reads_it_back_and_a_rerun_changes_nothing(capsys, test_driver_guest):
    dom = test_driver_guest
    first = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=dom.name(), snapshot_name='pre',
                       description='before the change')
    assert first['changed'] is True and first['action'] == 'created' and first['provider'] == 'libvirt'
    assert first['snapshot']['name'] == 'pre' and first['snapshot']['created_by'] == 'savepoint.virt.libvirt_snapshot'
    assert first['guest']['name'] == dom.name()
    assert snapshot_names(dom) == ['pre']
    # what libvirt holds is what the module reported: the marker and the description are in it
    xml = dom.snapshotLookupByName('pre').getXMLDesc()
    assert 'before the change' in xml and 'savepoint.virt.libvirt_snapshot' in xml
    again = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=dom.name(), snapshot_name='pre',
                       description='before the change')
    assert again['changed'] is False and snapshot_names(dom) == ['pre']


def test_check_mode_reports_the_plan_and_writes_nothing(capsys, test_driver_guest):
    dom = test_driver_guest
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=dom.name(), snapshot_name='pre',
                        _ansible_check_mode=True)
    assert result['changed'] is True and result['action'] == 'would create'
    assert snapshot_names(dom) == []


def test_neutral_module_uses_the_named_provider_and_info_reads_the_tree(capsys, test_driver_guest):
    dom = test_driver_guest
    made = run_module(capsys, BACKENDS, 'snapshot', neutral=True, provider='libvirt', name=dom.name(),
                      snapshot_name='via-neutral')
    assert made['changed'] is True and made['provider'] == 'libvirt'
    assert made['snapshot']['created_by'] == 'savepoint.virt.snapshot'
    info = run_module(capsys, BACKENDS, 'snapshot_info', info=True, neutral=True, provider='libvirt',
                      name=dom.name())
    assert info['changed'] is False
    (guest,) = [g for g in info['guests'] if g['guest']['name'] == dom.name()]
    assert [s['name'] for s in guest['snapshots']] == ['via-neutral'] and guest['current'] == 'via-neutral'


def test_a_missing_guest_fails_with_a_message_naming_it_and_no_traceback(capsys, test_driver_guest):
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name='no-such-guest-xyz', snapshot_name='pre')
    assert result['failed'] is True and result['changed'] is False
    assert 'no-such-guest-xyz' in result['msg'] and TEST_URI in result['msg'] and 'Traceback' not in result['msg']
    assert snapshot_names(test_driver_guest) == []


@pytest.mark.parametrize('args,words', [
    ({'state': 'absent', 'expires_in': '1d'}, ['expires_in', 'state=absent']),
    ({'include_volumes': True}, ["'include_volumes'", 'openstack', 'libvirt']),
    ({'uri': ''}, ['uri', 'empty']),
    ({'moid': 'vm-1'}, ["'moid'", 'libvirt']),
])
def test_bad_options_are_refused_before_anything_is_written(capsys, test_driver_guest, args, words):
    given = dict(name=test_driver_guest.name(), snapshot_name='pre')
    given.update(args)
    if 'moid' in args:
        given.pop('name')
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', **given)
    assert result['failed'] is True and result['changed'] is False
    for word in words:
        assert word in result['msg'], result['msg']
    assert snapshot_names(test_driver_guest) == []


def broken_create(monkeypatch):
    def broken(self, guest, spec):
        raise RuntimeError('GET qemu+tcp://admin:hunter2@host/system failed')
    monkeypatch.setattr(LibvirtBackend, 'start_create', broken)


def test_an_unexpected_exception_in_the_backend_ends_in_a_clear_per_guest_failure(
        capsys, test_driver_guest, monkeypatch):
    broken_create(monkeypatch)
    dom = test_driver_guest
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=dom.name(), snapshot_name='pre')
    assert result['failed'] is True and result['changed'] is False
    assert result['msg'].startswith("unexpected error while starting create of snapshot 'pre' on guest '%s': "
                                    "RuntimeError" % dom.name()), result['msg']
    assert 'Traceback' not in result['msg'] and 'MODULE FAILURE' not in result['msg']
    assert [r['action'] for r in result['results']] == ['failed']
    assert snapshot_names(dom) == []


def test_an_unexpected_exception_outside_the_engine_ends_in_a_clear_failure(capsys, test_driver_guest, monkeypatch):
    def broken(self):
        raise RuntimeError('libvirt went away')
    monkeypatch.setattr(LibvirtBackend, 'connect', broken)
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=test_driver_guest.name(), snapshot_name='pre')
    assert result['failed'] is True and result['changed'] is False
    assert result['msg'].startswith('unexpected error while talking to libvirt: RuntimeError: libvirt went away')
    assert 'please report it' in result['msg'] and 'Traceback' not in result['msg']


def test_uri_userinfo_in_an_unexpected_exception_never_reaches_the_output(capsys, test_driver_guest, monkeypatch):
    broken_create(monkeypatch)
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=test_driver_guest.name(), snapshot_name='pre')
    assert result['failed'] is True and 'hunter2' not in json.dumps(result)


def test_a_no_log_connection_option_is_masked_in_the_output(capsys, test_driver_guest):
    # The VMware password is no_log in every module's spec (all take all providers' options):
    # a value that appears in a message comes out masked.
    secret = 'S3cret-%s' % uuid.uuid4().hex[:6]
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=secret, snapshot_name='pre', password=secret)
    assert result['failed'] is True and secret not in json.dumps(result)


def test_secrets_inside_another_providers_cloud_dict_are_masked_too(capsys, test_driver_guest):
    # A libvirt module accepts OpenStack's cloud dict (module_defaults) and ignores it, yet Ansible would
    # echo it in the invocation: the password inside it is masked like a no_log value wherever it appears.
    secret = 'Cl0ud-%s' % uuid.uuid4().hex[:6]
    cloud = {'auth': {'auth_url': 'http://127.0.0.1:5000/v3', 'username': 'demo', 'password': secret}}
    result = run_module(capsys, LIBVIRT_ONLY, 'libvirt_snapshot', name=secret, snapshot_name='pre', cloud=cloud)
    assert result['failed'] is True and secret not in json.dumps(result)
    assert 'not found' in result['msg']

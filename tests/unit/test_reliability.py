"""Engine and module-layer reliability (issue 9 classes 1-6, 8) against the in-memory backend."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    InvalidRequestError, PartialFailureError, ProviderError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import (
    GuestRef, Marker, SnapshotRecord, SnapshotSpec, utcnow,
)
from ansible_collections.savepoint.virt.plugins.module_utils._options import (
    TASK_OPTIONS, check_strings, resolve_task_options,
)
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import (
    encode_description, make_marker, read_description,
)
from ansible_collections.savepoint.virt.plugins.module_utils._retention import RetentionRule
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from memory_backend import MemoryBackend


def fast(backend, **kw):
    return SnapshotEngine(backend, wait_policy=WaitPolicy(timeout=5, initial_delay=0, max_delay=0,
                                                          sleep=lambda _s: None), **kw)


def present(name='s1', guests=('vm1',), **spec):
    marker = spec.pop('marker', make_marker(None, 'test'))
    return Request(state='present', guests=[GuestRef(name=g) for g in guests], snapshot_name=name,
                   spec=SnapshotSpec(name=name, marker=marker, **spec))


@pytest.fixture
def backend():
    return MemoryBackend({'vm1': 'running', 'vm2': 'running', 'vm3': 'running'})


# -- class 1: any exception ends in a clear message, after the set's rollback ------------------------------
class Boom(Exception):
    pass


def test_an_unexpected_exception_mid_set_still_rolls_back_and_reports(backend, monkeypatch):
    original = backend.start_create

    def start_create(guest, spec):
        if guest.name == 'vm2':
            raise Boom('NUL byte in path')
        return original(guest, spec)
    monkeypatch.setattr(backend, 'start_create', start_create)
    with pytest.raises(PartialFailureError) as err:
        fast(backend).run(present('s', guests=('vm1', 'vm2', 'vm3')))
    msg = err.value.msg
    assert "'vm2': unexpected error while starting create of snapshot 's' on guest 'vm2': Boom" in msg
    assert 'rolled back' in msg and 'Traceback' not in msg
    assert backend.snapshots['vm1'] == [] and backend.snapshots['vm3'] == []
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert results['vm2']['action'] == 'failed' and results['vm1']['rollback'] == 'removed'


def test_an_unexpected_exception_while_waiting_fails_every_unfinished_step_and_rolls_back(backend, monkeypatch):
    backend.polls = 2

    def poll(_op):
        raise Boom('socket gone')
    monkeypatch.setattr(backend, 'poll', poll)
    with pytest.raises(PartialFailureError) as err:
        fast(backend).run(present('s', guests=('vm1', 'vm2')))
    assert 'may not have finished' in err.value.msg and 'Boom' in err.value.msg


def test_an_unexpected_exception_in_read_back_is_a_guest_failure(backend, monkeypatch):
    monkeypatch.setattr(backend, 'refresh_guest', lambda guest: (item for item in ()).throw(Boom('x')))
    fast(backend).run(present('s'))
    with pytest.raises(ProviderError, match="unexpected error while reading back guest 'vm1': Boom"):
        fast(backend).run(Request(state='reverted', guests=[GuestRef(name='vm1')], snapshot_name='s'))


def test_a_failing_rollback_of_one_guest_does_not_stop_the_others(backend, monkeypatch):
    backend.fail_create_on = {'vm3'}
    original = backend.start_delete

    def start_delete(guest, snap, remove_children):
        if guest.name == 'vm1':
            raise Boom('lost')
        return original(guest, snap, remove_children)
    monkeypatch.setattr(backend, 'start_delete', start_delete)
    with pytest.raises(PartialFailureError) as err:
        fast(backend).run(present('s', guests=('vm1', 'vm2', 'vm3')))
    assert 'ROLLBACK INCOMPLETE' in err.value.msg and 'vm1' in err.value.msg
    assert backend.snapshots['vm2'] == []


# -- class 2: options that do not apply to the state ----------------------------------------------------------
@pytest.mark.parametrize('state', ['present', 'absent', 'reverted', 'pruned'])
def test_every_task_option_is_refused_for_the_states_it_does_not_apply_to(state):
    for option, (default, states) in TASK_OPTIONS.items():
        value = default if default is not None else 1
        if state in states:
            assert resolve_task_options({option: value}, state)[option] == value
        else:
            with pytest.raises(InvalidRequestError, match='%s does not apply to state=%s' % (option, state)):
                resolve_task_options({option: value}, state)


def test_documented_defaults_are_filled_in():
    resolved = resolve_task_options({}, 'present')
    assert (resolved['quiesce'], resolved['kind'], resolved['description'], resolved['owner'],
            resolved['timeout'], resolved['wait'], resolved['all_or_nothing']) == (
        'never', 'internal', '', 'savepoint.virt', 600, True, True)
    assert resolve_task_options({}, 'reverted')['power_state'] == 'restore'


def test_provider_create_options_are_refused_for_other_states():
    with pytest.raises(InvalidRequestError, match='include_volumes does not apply to state=absent'):
        resolve_task_options({'include_volumes': True}, 'absent', OpenStackBackend.spec_options)
    assert resolve_task_options({'include_volumes': False}, 'absent', OpenStackBackend.spec_options)


@pytest.mark.parametrize('timeout', [0, -1, 604801, 10 ** 400])
def test_timeout_out_of_range(timeout):
    with pytest.raises(InvalidRequestError, match='timeout must be between 1 and 604800'):
        resolve_task_options({'timeout': timeout}, 'present')


# -- class 3 and 6: empty strings and control characters ---------------------------------------------------------
@pytest.mark.parametrize('params,option', [
    ({'owner': ''}, 'owner'), ({'uri': ''}, 'uri'), ({'expires_in': ''}, 'expires_in'),
    ({'snapshot_name': 'a\nb'}, 'snapshot_name'), ({'name': 'a\x00'}, 'name'), ({'description': 'a\x1bb'}, 'description'),
    ({'guests': ['ok', '']}, 'guests'), ({'guests': ['a\rb']}, 'guests'),
])
def test_empty_strings_and_control_characters_name_the_option(params, option):
    with pytest.raises(InvalidRequestError) as err:
        check_strings(params)
    assert err.value.msg.startswith(option)


def test_multi_line_descriptions_and_empty_descriptions_are_fine():
    check_strings({'description': 'line one\nline two\n\ttabbed\n', 'other': None})
    check_strings({'description': ''})


def test_secrets_are_not_inspected_so_never_echoed():
    check_strings({'password': 'p\x00ss'}, secret=['password'])


@pytest.mark.parametrize('entry,keys,words', [
    ({'moid': 'vm-1'}, {'name': 'name', 'uuid': 'uuid'}, ["'moid'", 'libvirt']),
    ({'name': 'a', 'moid': 'vm-1'}, {'name': 'name', 'moid': 'id'}, ['name', 'moid', 'not name and moid']),
    ({'id': 'a', 'server_id': 'b'}, {'name': 'name', 'id': 'id', 'server_id': 'id'}, ['id', 'server_id']),
    ({'name': 7}, {'name': 'name'}, ['name must be a non-empty string']),
])
def test_guests_entry_messages_name_the_key_the_user_wrote(entry, keys, words):
    with pytest.raises(InvalidRequestError) as err:
        GuestRef.from_value(entry, keys, 'libvirt')
    for word in words:
        assert word in err.value.msg
    assert 'mutually exclusive' not in err.value.msg


@pytest.mark.parametrize('port', [0, 70000, -1])
def test_vmware_port_is_range_checked(port):
    with pytest.raises(InvalidRequestError, match='port must be between 1 and 65535'):
        VmwareBackend({'hostname': 'h', 'port': port})


@pytest.mark.parametrize('uri,word', [('', 'empty'), ('qemu+tcp://h:70000/system', '65535'),
                                      ('qemu+tcp://h:x/system', '65535')])
def test_libvirt_uri_is_checked(uri, word):
    with pytest.raises(InvalidRequestError, match=word):
        LibvirtBackend({'uri': uri})


def test_shared_connection_options_are_identical_across_backends():
    from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS, check_shared_options
    check_shared_options(BACKENDS)

    class Other(LibvirtBackend):
        provider = 'other'
        connection_options = {'validate_certs': {'type': 'str'}}
    with pytest.raises(ValueError, match='validate_certs'):
        check_shared_options(BACKENDS + (Other,))


# -- class 4: truth of results ---------------------------------------------------------------------------------
def test_a_description_with_a_trailing_newline_stays_idempotent(backend):
    first = fast(backend).run(present('s', description='before patch\n'))
    assert first['action'] == 'created'
    stored = backend.snapshots['vm1'][0].description
    again = fast(backend).run(present('s', description=stored + '\n\n'))
    assert again['action'] == 'exists'


def test_encoded_descriptions_round_trip_normalised():
    text, marker, problem = read_description(encode_description('a\nb\n', make_marker(None, 't')))
    assert (text, marker.owner, problem) == ('a\nb', 'savepoint.virt', None)


def test_exists_warns_when_the_snapshot_is_expired_or_not_ours(backend):
    past = utcnow() - datetime.timedelta(days=1)
    fast(backend).run(present('old', marker=Marker(owner='team-b', created_by='x', expires_at=past)))
    fast(backend).run(present('hand', marker=None))
    old = fast(backend).run(present('old'))
    assert old['action'] == 'exists' and old['changed'] is False
    assert any("owner 'team-b'" in w for w in old['warnings'])
    assert any('expired at' in w for w in old['warnings'])
    hand = fast(backend).run(present('hand'))
    assert any('not created by savepoint.virt' in w for w in hand['warnings'])
    mine = fast(backend).run(present('fresh'))
    assert fast(backend).run(present('fresh'))['warnings'] == [] and mine['action'] == 'created'


def test_revert_reports_the_power_state_read_back_after_the_act(backend, monkeypatch):
    fast(backend).run(present('s'))

    def refresh(guest):
        guest.power_state = 'off'
        return guest
    monkeypatch.setattr(backend, 'refresh_guest', refresh)
    result = fast(backend).run(Request(state='reverted', guests=[GuestRef(name='vm1')], snapshot_name='s',
                                       power_state='off'))
    assert result['guest']['power_state'] == 'off'


def test_wait_false_on_a_provider_that_finished_at_once_says_so(backend):
    req = present('s')
    req.wait = False
    result = fast(backend).run(req)
    assert result['action'] == 'created' and 'not waited for' not in result['msg']
    assert result['snapshot']['name'] == 's'
    rev = Request(state='reverted', guests=[GuestRef(name='vm1')], snapshot_name='s', wait=False)
    assert fast(backend).run(rev)['action'] == 'reverted'


# -- class 5: unreadable markers ----------------------------------------------------------------------------------
@pytest.mark.parametrize('line', [
    '{"owner": "savepoint.virt", "expires_at": 12}', '{"owner": 5}', '{"owner": ""}', '[1, 2]', '{not json',
    '{"owner": "a", "created_by": ["x"]}', '{"owner": "a", "expires_at": "soon"}',
])
def test_an_unreadable_marker_means_not_owned_and_says_why(line):
    text, marker, problem = read_description('mine\n[savepoint.virt] ' + line)
    assert marker is None and 'unreadable ownership marker' in problem


def test_an_unreadable_marker_is_reported_by_info_and_never_pruned(backend):
    bad = SnapshotRecord(name='edited', id='x1', created_at='2020-01-01T00:00:00Z',
                         marker_problem='unreadable ownership marker (expires_at is 12)')
    backend.snapshots['vm1'].append(bad)
    info = fast(backend).info()
    assert any("'edited'" in w and 'not owned' in w for w in info['warnings'])
    assert 'marker_problem' not in info['guests'][0]['snapshots'][0]
    pruned = fast(backend).run(Request(state='pruned', guests=[GuestRef(name='vm1'), GuestRef(name='vm2')],
                                       retention=RetentionRule(keep_last=0), owner='savepoint.virt'))
    assert pruned['changed'] is False and any("'edited'" in w for w in pruned['warnings'])

"""Rename (new_snapshot_name/new_description) and snapshot_id as engine features, on the in-memory backend;
the module layer's parsing of the parity options (boolean quiesce, aliases, per-state refusals)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils import _module
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import snapshots as vmw_snapshots
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    InvalidRequestError, SnapshotConflictError, SnapshotNotFoundError, UnsupportedError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import Capabilities, Guest, GuestRef, SnapshotRecord
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import encode_description, make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._options import resolve_task_options

from memory_backend import MemoryBackend
from test_reliability import fast, present


def seeded(*names, rename=True):
    backend = MemoryBackend(capabilities=Capabilities(memory=True, quiesce=True, rename=rename))
    for name in names:
        fast(backend).run(present(name, description='about %s' % name))
    return backend


def rename(name=None, new=None, desc=None, snapshot_id=None):
    return Request(state='present', guests=[GuestRef(name='vm1')], snapshot_name=name, snapshot_id=snapshot_id,
                   new_name=new, new_description=desc)


def test_rename_renames_reads_back_and_is_idempotent():
    backend = seeded('a', 'b')
    result = fast(backend).run(rename('a', 'c', 'new words'))
    assert result['changed'] and result['action'] == 'renamed'
    assert result['snapshot']['name'] == 'c' and result['snapshot']['description'] == 'new words'
    assert backend.writes[-1] == ('rename', 'vm1', 'a', 'c', 'new words')
    writes = len(backend.writes)
    again = fast(backend).run(rename('a', 'c', 'new words'))
    assert not again['changed'] and again['action'] == 'exists' and len(backend.writes) == writes
    assert 'already has the name and description asked' in again['msg']


def test_rename_in_check_mode_writes_nothing_and_predicts_the_tree():
    backend = seeded('a', 'b')
    writes = list(backend.writes)
    result = fast(backend, check_mode=True, diff=True).run(rename('a', 'c'))
    assert result['changed'] and result['action'] == 'would rename' and backend.writes == writes
    assert 'c' in result['diff']['after'] and ' a' not in result['diff']['after']
    assert "name 'a' -> 'c'" in result['msg']


def test_rename_by_id_and_refusals():
    backend = seeded('a', 'b')
    snap_id = backend.snapshots['vm1'][0].id
    result = fast(backend).run(rename(None, None, 'only words', snapshot_id=snap_id))
    assert result['action'] == 'renamed' and result['snapshot']['name'] == 'a'
    with pytest.raises(SnapshotConflictError, match="already has a snapshot 'b'"):
        fast(backend).run(rename('a', 'b'))
    with pytest.raises(SnapshotNotFoundError, match="no snapshot 'zz' to rename"):
        fast(backend).run(rename('zz', 'y'))
    with pytest.raises(SnapshotConflictError, match="is snapshot 'a', not 'b'"):
        fast(backend).run(rename('b', 'y', snapshot_id=snap_id))
    no_rename = seeded('a', rename=False)
    with pytest.raises(UnsupportedError, match='memory cannot rename snapshots'):
        fast(no_rename).run(rename('a', 'y'))


def test_snapshot_id_selects_for_revert_and_delete():
    backend = seeded('a', 'b')
    first = backend.snapshots['vm1'][0].id
    result = fast(backend).run(Request(state='reverted', guests=[GuestRef(name='vm1')], snapshot_id=first))
    assert result['action'] == 'reverted' and result['snapshot']['name'] == 'a'
    result = fast(backend).run(Request(state='absent', guests=[GuestRef(name='vm1')], snapshot_id=first))
    assert result['action'] == 'deleted' and [s.name for s in backend.snapshots['vm1']] == ['b']
    result = fast(backend).run(Request(state='absent', guests=[GuestRef(name='vm1')], snapshot_id=first))
    assert result['action'] == 'absent' and not result['changed']
    with pytest.raises(InvalidRequestError, match='only selects the snapshot to rename'):
        Request(state='present', guests=[GuestRef(name='vm1')], snapshot_id=first).validate()


@pytest.mark.parametrize('params,message', [
    ({'new_snapshot_name': 'x'}, 'new_snapshot_name does not apply to state=absent'),
    ({'snapshot_id': 'x'}, None),
])
def test_rename_options_per_state(params, message):
    if message:
        with pytest.raises(InvalidRequestError, match=message):
            resolve_task_options(params, 'absent')
    else:
        assert resolve_task_options(params, 'absent')['snapshot_id'] == 'x'


def test_create_only_options_are_refused_in_a_rename():
    with pytest.raises(InvalidRequestError, match='memory, quiesce do not apply to a rename'):
        resolve_task_options({'new_description': '', 'memory': True, 'quiesce': 'never'}, 'present')


@pytest.mark.parametrize('value,expected', [
    (True, 'required'), (False, 'never'), ('yes', 'required'), ('False', 'never'), ('preferred', 'preferred'),
    (None, None),
])
def test_boolean_quiesce(value, expected):
    assert _module.quiesce_policy(value) == expected


@pytest.mark.parametrize('value', ['maybe', 2, ['required']])
def test_bad_quiesce_names_the_option(value):
    with pytest.raises(InvalidRequestError, match='quiesce must be one of required, preferred, never, or a boolean'):
        _module.quiesce_policy(value)


def test_parity_aliases_in_the_argument_spec():
    spec = _module.snapshot_argument_spec([VmwareBackend])
    assert set(spec['username']['aliases']) == {'user', 'admin'}
    assert set(spec['password']['aliases']) == {'pass', 'pwd'} and spec['password']['no_log'] is True
    assert spec['memory']['aliases'] == ['memory_dump']
    assert spec['proxy_host']['fallback'][1] == ['VMWARE_PROXY_HOST']
    assert spec['proxy_port']['fallback'][1] == ['VMWARE_PROXY_PORT']


class FakeSnapshot:
    """Records what RenameSnapshot is called with (vcsim does not implement the method)."""

    calls = []

    def __init__(self, moid, stub):
        self.moid = moid

    def RenameSnapshot(self, **kwargs):  # pylint: disable=invalid-name
        FakeSnapshot.calls.append((self.moid, kwargs))


def test_vmware_rename_keeps_the_ownership_marker(monkeypatch):
    marker = make_marker('team-a', 'savepoint.virt.vmware_snapshot', '1d')
    stored = encode_description('old words', marker)
    node = NS(snapshot=NS(_moId='snapshot-7'), description=stored, childSnapshotList=[])
    backend = VmwareBackend({'hostname': 'vc', 'username': 'u', 'password': 'p'})
    backend.si = NS(_stub=None)
    monkeypatch.setattr(vmw_snapshots.sdk, 'vim', NS(vm=NS(Snapshot=FakeSnapshot)))
    monkeypatch.setattr(backend, '_snapshot_state', lambda guest, fresh: (NS(rootSnapshotList=[node]), None))
    FakeSnapshot.calls.clear()
    guest = Guest(id='vm-1', name='web')
    op = backend.start_rename(guest, SnapshotRecord(name='old', id='snapshot-7'), 'new', 'new words')
    assert op.done and op.error is None and op.action == 'rename'
    (moid, kwargs), = FakeSnapshot.calls
    assert moid == 'snapshot-7' and kwargs['name'] == 'new'
    assert kwargs['description'] == encode_description('new words', marker)
    FakeSnapshot.calls.clear()
    backend.start_rename(guest, SnapshotRecord(name='old', id='snapshot-7'), 'newer', None)
    assert FakeSnapshot.calls == [('snapshot-7', {'name': 'newer'})]


def test_consolidate_true_is_refused_where_the_provider_has_none_and_auto_is_a_no_op():
    from ansible_collections.savepoint.virt.plugins.module_utils._backend import SnapshotBackend
    backend = seeded('a', 'b')
    absent = dict(state='absent', guests=[GuestRef(name='vm1')], snapshot_name='a')
    writes = list(backend.writes)
    with pytest.raises(UnsupportedError, match='memory has no disk consolidation'):
        fast(backend).run(Request(consolidate='true', **absent))
    assert backend.writes == writes
    result = fast(backend).run(Request(consolidate='auto', **absent))
    assert result['action'] == 'deleted' and [o['action'] for o in result['results'][0]['operations']] == ['delete']
    assert 'start_consolidate' in SnapshotBackend.__dict__


def test_consolidate_runs_after_the_removals_and_a_failure_is_a_warning():
    backend = seeded('a', 'b')
    backend.caps.consolidate = True
    calls = []

    def consolidate(guest, force):
        calls.append(force)
        if len(calls) == 2:
            raise UnsupportedError('no ConsolidateVMDisks_Task here')
        return None if not force else backend._op('consolidate', guest, '(disks)', lambda: None)
    backend.start_consolidate = consolidate
    result = fast(backend).run(Request(state='absent', guests=[GuestRef(name='vm1')], snapshot_name='a',
                                       consolidate='true'))
    assert calls == [True] and 'disks consolidated' in result['msg']
    assert [o['action'] for o in result['results'][0]['operations']] == ['delete', 'consolidate']
    result = fast(backend).run(Request(state='absent', guests=[GuestRef(name='vm1')], snapshot_name='b',
                                       consolidate='true'))
    assert result['changed'] is True and result['action'] == 'deleted'
    assert 'consolidating its disks failed: no ConsolidateVMDisks_Task here' in result['warnings'][0]
    fast(backend).run(Request(state='absent', guests=[GuestRef(name='vm1')], snapshot_name='zz', consolidate='false'))
    assert len(calls) == 2

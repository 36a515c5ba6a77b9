"""Pure logic of the VMware backend with small hand-written fakes (no vcsim, not marked).

What vcsim cannot show: capability flags that say yes with VMware Tools running,
a memory snapshot vSphere really stored, sizes from a real file layout, and the
waiter's deadline against a task that never finishes.
"""

from __future__ import annotations

import datetime
from types import SimpleNamespace as NS

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends import vmware as vmw
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import (
    VmwareBackend, snapshot_records, translate,
)
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    AuthenticationError, ConnectionFailedError, ProviderError, QuiesceUnavailableError, SnapshotNotFoundError,
    UnsupportedError, WaitTimeoutError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import Guest, GuestRef, SnapshotRecord, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation, WaitPolicy

from pyVmomi import vim, vmodl

ALL_FLAGS = {'capability.%s' % f: True for f in vmw.sdk.CAPABILITY_FLAGS}


def backend(**conn):
    return VmwareBackend(dict({'hostname': 'vc', 'username': 'u', 'password': 'p'}, **conn))


def caps_for(props, power='running', **conn):
    be = backend(**conn)
    be._props['vm-1'] = dict(props, _obj=None)
    return be.capabilities(Guest(id='vm-1', name='web', power_state=power))


def test_flags_true_and_tools_running_allow_memory_and_quiesce():
    caps = caps_for(dict(ALL_FLAGS, **{'guest.toolsRunningStatus': 'guestToolsRunning'}))
    assert caps.memory and caps.quiesce and caps.internal and caps.revert and not caps.external


def test_flags_false_refuse_with_the_flag_name_unless_told_to_ignore_them():
    props = {'guest.toolsRunningStatus': 'guestToolsRunning'}
    caps = caps_for(props)
    assert not caps.memory and 'memorySnapshotsSupported' in caps.reasons['memory']
    assert not caps.quiesce and 'quiescedSnapshotsSupported' in caps.reasons['quiesce']
    assert not caps.internal and not caps.revert
    assert 'honor_capability_flags: false' in caps.reasons['memory']
    caps = caps_for(props, honor_capability_flags=False)
    assert caps.memory and caps.quiesce and caps.internal and caps.revert


@pytest.mark.parametrize('tools,power,reason', [
    ('guestToolsNotRunning', 'running', 'VMware Tools are not running'),
    ('guestToolsRunning', 'off', 'is off'),
    (None, 'running', 'VMware Tools are not running'),
])
def test_quiesce_needs_tools_whatever_the_flags(tools, power, reason):
    caps = caps_for(dict(ALL_FLAGS, **{'guest.toolsRunningStatus': tools}), power=power)
    assert not caps.quiesce and reason in caps.reasons['quiesce']


def test_connection_options_resolve_env_and_defaults(monkeypatch):
    monkeypatch.delenv('VMWARE_PORT', raising=False)
    monkeypatch.delenv('VMWARE_VALIDATE_CERTS', raising=False)
    be = backend()
    assert be.port == 443 and be.validate_certs is True and be.honor_capability_flags is True
    monkeypatch.setenv('VMWARE_PORT', '8443')
    monkeypatch.setenv('VMWARE_VALIDATE_CERTS', 'false')
    be = backend()
    assert be.port == 8443 and be.validate_certs is False
    assert backend(port=9443, validate_certs=True).port == 9443
    assert VmwareBackend.connection_options['password']['no_log'] is True


def test_folder_paths_tried():
    assert backend()._folder_path('/DC0/vm/prod/', 'web') == ['DC0/vm/prod/web']
    be = backend(datacenter='DC0')
    assert be._folder_path('prod', 'web') == ['DC0/vm/prod/web', 'prod/web']
    assert be._folder_path('vm/prod', 'web') == ['DC0/vm/prod/web', 'vm/prod/web']
    assert be._folder_path('DC0/vm/prod', 'web') == ['DC0/vm/prod/web']


# -- faults ---------------------------------------------------------------------------------------------

def test_faults_keep_the_provider_message():
    err = translate(vim.fault.InvalidLogin(msg='Login failure'), 'logging in')
    assert isinstance(err, AuthenticationError) and err.provider_message == 'Login failure'
    err = translate(vmodl.fault.ManagedObjectNotFound(msg='gone'), 'deleting')
    assert isinstance(err, SnapshotNotFoundError)
    err = translate(vmodl.fault.MethodNotFound(msg='no such method'), 'consolidating')
    assert isinstance(err, UnsupportedError) and 'no such method' in err.msg
    err = translate(vim.fault.ApplicationQuiesceFault(msg='VSS failed'), 'creating')
    assert isinstance(err, QuiesceUnavailableError)
    err = translate(vim.fault.TaskInProgress(msg='busy'), 'creating')
    assert isinstance(err, ProviderError) and 'busy' in err.msg and err.details['vsphere_fault'] == 'TaskInProgress'
    assert isinstance(translate(ConnectionResetError('reset'), 'waiting'), ConnectionFailedError)


# -- records from a real-looking tree and layout -----------------------------------------------------------

def snap(moid):
    return NS(_moId=moid)


def node(moid, name, state='poweredOn', quiesced=False, children=(), description=''):
    return NS(snapshot=snap(moid), name=name, description=description, state=state, quiesced=quiesced,
              id=int(moid.split('-')[1]), vm=NS(_moId='vm-1'), replaySupported=False,
              createTime=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
              childSnapshotList=list(children))


def unit(*keys):
    return NS(fileKey=list(keys))


def test_records_memory_and_sizes_from_layout():
    tree = NS(currentSnapshot=snap('snapshot-2'), rootSnapshotList=[
        node('snapshot-1', 'base', state='poweredOff', children=[node('snapshot-2', 'with-mem')])])
    layout = NS(
        file=[NS(key=k, size=s) for k, s in {1: 100, 2: 1000, 10: 5, 11: 7, 12: 4096, 13: 1, 14: 2048}.items()],
        snapshot=[
            NS(key=snap('snapshot-1'), dataKey=10, memoryKey=-1, disk=[NS(key=2000, chain=[unit(1, 2)])]),
            NS(key=snap('snapshot-2'), dataKey=11, memoryKey=12,
               disk=[NS(key=2000, chain=[unit(1, 2), unit(13, 14)])]),
        ])
    base, mem = snapshot_records(tree, layout)
    assert (base.name, base.memory, base.current, base.size_bytes) == ('base', False, False, 5)
    expected = ('with-mem', True, True, 'base', 7 + 4096 + 1 + 2048)
    assert (mem.name, mem.memory, mem.current, mem.parent, mem.size_bytes) == expected
    assert base.children == ['with-mem'] and base.created_at == '2026-01-02T03:04:05Z'
    # no layout: memory from the recorded state, size unknown (never guessed)
    base, mem = snapshot_records(tree, None)
    assert base.memory is False and mem.memory is True and base.size_bytes is None and mem.size_bytes is None


def test_verify_created_accepts_what_vsphere_really_stored():
    be = backend()
    guest = Guest(id='vm-1', name='web', power_state='running', handle=None)
    tree = NS(currentSnapshot=snap('snapshot-5'), rootSnapshotList=[node('snapshot-5', 's', quiesced=True)])
    layout = NS(file=[NS(key=1, size=1), NS(key=2, size=2)],
                snapshot=[NS(key=snap('snapshot-5'), dataKey=1, memoryKey=2, disk=[])])
    be._snapshot_state = lambda _guest, fresh: (tree, layout)
    op = Operation(action='create', guest=guest, snapshot_name='s', result=snap('snapshot-5'))
    spec = SnapshotSpec(name='s', memory=True, quiesce='required')
    assert be._verify_created(op, spec) is None


# -- the waiter's deadline ------------------------------------------------------------------------------------

class NeverDone:
    """A property collector whose task never finishes (what vcsim cannot do)."""

    def __init__(self):
        self.waits = []

    def CreatePropertyCollector(self):
        return self

    def CreateFilter(self, spec, partial):
        return None

    def WaitForUpdatesEx(self, version, options):
        self.waits.append(options.maxWaitSeconds)
        return None

    def DestroyPropertyCollector(self):
        pass

    def RetrievePropertiesEx(self, specs, options):   # the read before the wait: every task still running
        return NS(objects=[NS(obj=o.obj, propSet=[NS(name='info.state', val='running')])
                           for spec in specs for o in spec.objectSet], token=None)


class AllEnded(NeverDone):
    """Every task had ended before the wait began (as on vcsim): the first read says so."""

    def __init__(self):
        super().__init__()
        self.collectors = 0

    def CreatePropertyCollector(self):
        self.collectors += 1
        return self

    def RetrievePropertiesEx(self, specs, options):
        return NS(objects=[NS(obj=o.obj, propSet=[NS(name='info.state', val='success'),
                                                  NS(name='info.result', val=None)])
                           for spec in specs for o in spec.objectSet], token=None)


def test_tasks_that_ended_before_the_wait_are_read_once_without_a_collector_of_their_own():
    be = backend()
    pc = AllEnded()
    be.content = NS(propertyCollector=pc)
    be._read_after = lambda ops: None   # no guest properties to read in this fake
    policy = WaitPolicy(timeout=30, clock=lambda: 0.0)
    ops = [Operation(action='create', guest=Guest(id='vm-%d' % i, name='g%d' % i), snapshot_name='s',
                     handle=vim.Task('task-%d' % i), id='task-%d' % i) for i in range(3)]
    be.wait(ops, policy)
    assert all(op.done and op.error is None for op in ops)
    assert pc.collectors == 0 and pc.waits == []


def test_wait_ends_at_the_deadline_with_one_waiter_for_all_tasks():
    be = backend()
    pc = NeverDone()
    be.content = NS(propertyCollector=pc)
    clock = iter(range(0, 10000, 7)).__next__
    policy = WaitPolicy(timeout=30, clock=lambda: float(clock()), progress_every=15)
    ops = [Operation(action='create', guest=Guest(id='vm-%d' % i, name='g%d' % i), snapshot_name='s',
                     handle=vim.Task('task-%d' % i), id='task-%d' % i) for i in range(3)]
    lines = []
    with pytest.raises(WaitTimeoutError, match='timed out after 30s'):
        be.wait(ops, policy, lines.append)
    assert pc.waits and all(1 <= w <= vmw.tasks.MAX_WAIT_SLICE for w in pc.waits)
    assert lines and 'still waiting for create g0, create g1, create g2' in lines[0]


def test_a_start_cut_off_mid_request_is_an_unknown_outcome_a_refused_one_is_not():
    be = backend()
    guest = Guest(id='vm-1', name='web')

    def refused():
        raise ConnectionRefusedError(111, 'Connection refused')

    def reset():
        raise ConnectionResetError(104, 'Connection reset by peer')
    with pytest.raises(ConnectionFailedError, match=r'\(not started\)') as err:
        be._start('create', guest, 's', refused, "creating snapshot 's'")
    assert 'may have been started' not in err.value.msg
    be = backend()
    with pytest.raises(ConnectionFailedError, match='may have been started on the server'):
        be._start('create', guest, 's', reset, "creating snapshot 's'")
    # once broken, later starts fail at once instead of each waiting for a network timeout
    with pytest.raises(ConnectionFailedError, match='not started: the connection to vSphere broke earlier'):
        be._start('create', guest, 's', lambda: pytest.fail('must not be called'), "creating snapshot 's'")


# -- power state after a revert (vcsim has no memory snapshots and never changes power on revert) ---------

@pytest.mark.parametrize('memory,recorded,asked,expected', [
    (True, 'running', 'restore', 'running'),
    (True, 'suspended', 'restore', 'suspended'),
    (False, 'running', 'restore', 'off'),
    (True, 'running', 'off', 'off'),
    (False, 'off', 'on', 'running'),
])
def test_power_after_revert(memory, recorded, asked, expected):
    snapshot = SnapshotRecord(name='s', id='snapshot-1', memory=memory, power_state=recorded)
    assert vmw.power_after_revert(snapshot, asked) == expected


class FakeVm:
    def __init__(self, state):
        self.state = state
        self.calls = []

    def _task(self, name, state):
        def call():
            self.calls.append(name)
            self.state = state
            return NS(_moId='task-%d' % len(self.calls))
        return call

    def __getattr__(self, name):
        return self._task(name, {'PowerOnVM_Task': 'running', 'PowerOffVM_Task': 'off',
                                 'SuspendVM_Task': 'suspended'}[name])


@pytest.mark.parametrize('start,want,calls', [
    ('running', 'running', []),
    ('running', 'off', ['PowerOffVM_Task']),
    ('off', 'running', ['PowerOnVM_Task']),
    ('suspended', 'running', ['PowerOnVM_Task']),
    ('running', 'suspended', ['SuspendVM_Task']),
    ('off', 'suspended', ['PowerOnVM_Task', 'SuspendVM_Task']),
])
def test_power_state_is_enforced_step_by_step_and_checked(start, want, calls):
    be = backend()
    vm = FakeVm(start)
    be._power_state = lambda guest: vm.state
    guest = Guest(id='vm-1', name='web', power_state=start, handle=vm)
    step = be._enforce_power(guest, want, 's')
    while step is not None:
        step.finish()
        step = step.follow_up()
    assert vm.calls == calls and vm.state == want and guest.power_state == want


def test_a_power_state_that_will_not_change_is_an_error():
    be = backend()
    vm = FakeVm('running')
    be._power_state = lambda guest: 'running'    # the server ignores the power-off
    guest = Guest(id='vm-1', name='web', power_state='running', handle=vm)
    step = be._enforce_power(guest, 'off', 's')
    with pytest.raises(ProviderError, match="is running after reverting to 's', not off"):
        while step is not None:
            step.finish()
            step = step.follow_up()


# -- uuid lookups --------------------------------------------------------------------------------------------

class FakeIndex:
    def __init__(self, bios=(), instance=(), find_all=True):
        self.found = {False: list(bios), True: list(instance)}
        self.find_all = find_all
        self.calls = []

    def FindAllByUuid(self, datacenter, uuid, vmSearch, instanceUuid):
        self.calls.append('FindAllByUuid')
        if not self.find_all:
            raise vmodl.fault.MethodNotFound(msg='not implemented')
        return self.found[instanceUuid]

    def FindByUuid(self, datacenter, uuid, vmSearch, instanceUuid):
        self.calls.append('FindByUuid')
        return (self.found[instanceUuid] or [None])[0]


def test_uuid_shared_by_clones_is_found_twice_not_once():
    be = backend()
    index = FakeIndex(bios=['vm-1', 'vm-2'])
    assert be._by_uuid(index, GuestRef(uuid='u'), False) == ['vm-1', 'vm-2']
    index = FakeIndex(bios=['vm-1', 'vm-2'], find_all=False)
    assert be._by_uuid(index, GuestRef(uuid='u'), False) == ['vm-1']
    assert be._by_uuid(index, GuestRef(uuid='u'), True) == []
    assert index.calls == ['FindAllByUuid', 'FindByUuid', 'FindByUuid']   # the missing method is tried once


def test_vmware_validate_certs_env_does_not_leak_into_other_providers_of_the_neutral_modules(monkeypatch):
    from ansible_collections.savepoint.virt.plugins.module_utils._module import connection_spec
    spec = connection_spec([VmwareBackend])['validate_certs']
    assert 'fallback' not in spec and 'default' not in spec   # resolved by the VMware backend alone
    monkeypatch.setenv('VMWARE_VALIDATE_CERTS', 'false')
    assert backend().validate_certs is False
    assert backend(validate_certs=True).validate_certs is True


class OneDone(NeverDone):
    """The first update says task-1 succeeded; the other tasks never finish."""

    def WaitForUpdatesEx(self, version, options):
        self.waits.append(options.maxWaitSeconds)
        if len(self.waits) > 1:
            return None
        change = [NS(name='info.state', val='success'), NS(name='info.result', val=None)]
        return NS(version='1', filterSet=[NS(objectSet=[NS(obj=vim.Task('task-1'), changeSet=change)])])


def test_wait_until_first_returns_when_one_task_ended_and_leaves_the_others_running():
    be = backend()
    be.content = NS(propertyCollector=OneDone())
    be._read_after = lambda ops: None   # no guest properties to read in this fake
    clock = iter(range(0, 10000, 1)).__next__
    policy = WaitPolicy(timeout=300, clock=lambda: float(clock()))
    ops = [Operation(action='create', guest=Guest(id='vm-%d' % i, name='g%d' % i), snapshot_name='s',
                     handle=vim.Task('task-%d' % i), id='task-%d' % i) for i in range(3)]
    be.wait(ops, policy, until_first=True)   # no WaitTimeoutError: it returned at the first ended task
    assert [op.done for op in ops] == [False, True, False]
    assert be.content.propertyCollector.waits == [vmw.tasks.MAX_WAIT_SLICE]
    with pytest.raises(WaitTimeoutError):    # without until_first the same wait goes on to the deadline
        be.wait(ops, policy)

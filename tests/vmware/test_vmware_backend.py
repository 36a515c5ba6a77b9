"""VMware specifics against vcsim: TLS, login, lookups, capability flags, power state, bulk, wait: false."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends import vmware as vmware_module
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    AmbiguousGuestError, AuthenticationError, CertificateError, GuestNotFoundError, InvalidRequestError,
    PartialFailureError, ProviderError, QuiesceUnavailableError, UnsupportedError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from lease_margin import use_short_margin
from services.vcsim import VcsimServer

pytestmark = pytest.mark.vmware

SECRET = 'Pw-9f3e1c-not-for-logs'


def run(conn, request, check_mode=False, timeout=60.0):
    with VmwareBackend(conn) as backend:
        return SnapshotEngine(backend, check_mode=check_mode, wait_policy=WaitPolicy(timeout=timeout)).run(request)


def present(refs, name, expires_in=None, **spec):
    return Request(state='present', guests=refs, snapshot_name=name,
                   spec=SnapshotSpec(name=name, marker=make_marker(None, 'vmware-tests', expires_in), **spec))


def snapshot_names(vm):
    names = []

    def walk(nodes):
        for node in nodes or []:
            names.append(node.name)
            walk(node.childSnapshotList)
    if vm.snapshot is not None:
        walk(vm.snapshot.rootSnapshotList)
    return names


# -- TLS and login -----------------------------------------------------------------------------------

def test_certificate_is_verified_by_default_even_on_127_0_0_1(vcsim, conn):
    conn = dict(conn)
    conn.pop('validate_certs')
    with pytest.raises(CertificateError, match='validate_certs: false') as err:
        VmwareBackend(conn).connect()
    assert err.value.kind == 'certificate_verify_failed'
    with VmwareBackend(dict(conn, validate_certs=False)) as backend:
        assert backend.find_guest(GuestRef(name='DC0_H0_VM0')).name == 'DC0_H0_VM0'


def test_environment_fallbacks(vcsim, monkeypatch):
    monkeypatch.setenv('VMWARE_HOST', vcsim.host)
    monkeypatch.setenv('VMWARE_PORT', str(vcsim.port))
    monkeypatch.setenv('VMWARE_USER', 'user')
    monkeypatch.setenv('VMWARE_PASSWORD', 'pass')
    monkeypatch.setenv('VMWARE_VALIDATE_CERTS', 'true')
    with pytest.raises(CertificateError):
        VmwareBackend({}).connect()
    monkeypatch.setenv('VMWARE_VALIDATE_CERTS', 'no')
    with VmwareBackend({}) as backend:
        assert backend.port == vcsim.port and backend.validate_certs is False
        assert backend.find_guest(GuestRef(name='DC0_H0_VM1')).id.startswith('vm-')


def test_missing_credentials_are_an_input_error(monkeypatch):
    for var in ('VMWARE_HOST', 'VMWARE_USER', 'VMWARE_PASSWORD'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InvalidRequestError, match='hostname, username, password'):
        VmwareBackend({}).connect()


@pytest.fixture(scope='module')
def locked_vcsim():
    with VcsimServer(vms_per_pool=1, extra_args=['-username', 'admin', '-password', SECRET]) as server:
        yield server


def test_wrong_password_is_a_clear_error_without_the_secret(locked_vcsim):
    conn = {'hostname': locked_vcsim.host, 'port': locked_vcsim.port, 'username': 'admin',
            'password': SECRET + 'x', 'validate_certs': False}
    with pytest.raises(AuthenticationError) as err:
        VmwareBackend(conn).connect()
    text = repr(err.value.to_result()) + str(err.value)
    assert "refused the login of user 'admin'" in text and 'wrong user name or password' in text
    assert SECRET not in text
    with VmwareBackend(dict(conn, password=SECRET)) as backend:
        assert backend.find_guest(GuestRef(name='DC0_H0_VM0'))


def test_unreachable_server_is_a_connection_error(vcsim):
    with pytest.raises(Exception) as err:
        VmwareBackend({'hostname': '127.0.0.1', 'port': 9, 'username': 'u', 'password': 'p',
                       'validate_certs': False}).connect()
    assert err.value.kind == 'connection_failed'


# -- lookups -----------------------------------------------------------------------------------------

class CallCounter:
    """Counts SOAP calls made through a connected backend's stub, and the property retrievals and task
    starts it sends itself (fast_props, starts)."""

    def __init__(self, backend):
        self.calls = []
        stub = backend.si._stub
        invoke, accessor = stub.InvokeMethod, stub.InvokeAccessor
        collector = backend._property_collector
        send = collector.send

        def sent(stub, mo, info, args):
            self.calls.append(info.wsdlName)
            return send(stub, mo, info, args)
        collector.send = sent

        def method(mo, info, args, *rest):
            self.calls.append(info.wsdlName)
            return invoke(mo, info, args, *rest)

        def access(mo, info, *rest):
            self.calls.append('get %s' % info.name)
            return accessor(mo, info, *rest)
        stub.InvokeMethod, stub.InvokeAccessor = method, access
        together = backend._send_together

        def started(collector, requests):   # the task starts sent together
            self.calls.extend(info.wsdlName for _mo, info, _args in requests)
            return together(collector, requests)
        backend._send_together = started


def test_lookups_by_folder_uuid_moid_cost_a_constant_number_of_calls(inventory, backend):
    vm = inventory.new_vm('lookup-target', folder='prod/web')
    counter = CallCounter(backend)
    by_folder = backend.find_guest(GuestRef(name='lookup-target', folder='DC0/vm/prod/web'))
    assert counter.calls == ['FindByInventoryPath', 'RetrievePropertiesEx']
    counter.calls.clear()
    by_uuid = backend.find_guest(GuestRef(uuid=vm.config.uuid))
    # vcsim lacks FindAllByUuid (tried once per connection), so FindByUuid answers
    assert counter.calls == ['FindAllByUuid', 'FindByUuid', 'RetrievePropertiesEx']
    counter.calls.clear()
    by_instance = backend.find_guest(GuestRef(uuid=vm.config.instanceUuid))
    assert counter.calls == ['FindByUuid', 'FindByUuid', 'RetrievePropertiesEx']
    counter.calls.clear()
    by_moid = backend.find_guest(GuestRef(id=vm._moId))
    assert counter.calls == ['RetrievePropertiesEx']
    counter.calls.clear()
    by_name = backend.find_guest(GuestRef(name='lookup-target'))
    # one retrieval of names only through a container view, then the one match's properties
    assert [c for c in counter.calls if c != 'DestroyView'] == [
        'CreateContainerView', 'RetrievePropertiesEx', 'RetrievePropertiesEx']
    assert {g.id for g in (by_folder, by_uuid, by_instance, by_moid, by_name)} == {vm._moId}
    assert by_moid.name == 'lookup-target' and by_moid.power_state == 'running'


def test_folder_relative_to_the_datacenter(inventory, conn):
    vm = inventory.new_vm('relative-target', folder='team')
    with VmwareBackend(dict(conn, datacenter='DC0')) as backend:
        assert backend.find_guest(GuestRef(name='relative-target', folder='team')).id == vm._moId
        assert backend.find_guest(GuestRef(name='relative-target', folder='vm/team')).id == vm._moId
        assert backend.find_guest(GuestRef(name='relative-target', folder='/DC0/vm/team/')).id == vm._moId
    with pytest.raises(GuestNotFoundError, match="no datacenter 'DC9'"):
        VmwareBackend(dict(conn, datacenter='DC9')).connect()


def test_not_found_and_ambiguous_names(inventory, backend):
    one = inventory.new_vm('twin', folder='a')
    two = inventory.new_vm('twin', folder='b')
    with pytest.raises(AmbiguousGuestError) as err:
        backend.find_guest(GuestRef(name='twin'))
    assert one._moId in err.value.msg and two._moId in err.value.msg
    assert backend.find_guest(GuestRef(name='twin', folder='DC0/vm/b')).id == two._moId
    for ref in (GuestRef(name='nope'), GuestRef(name='twin', folder='DC0/vm/c'),
                GuestRef(uuid='00000000-0000-0000-0000-000000000000'), GuestRef(id='vm-999999'),
                GuestRef(id=inventory.host._moId), GuestRef(id=inventory.dc.vmFolder._moId)):
        with pytest.raises(GuestNotFoundError):
            backend.find_guest(ref)
    with pytest.raises(GuestNotFoundError, match='id vm-999999'):
        backend.find_guests([GuestRef(id=one._moId), GuestRef(id='vm-999999')])


def test_many_names_are_found_with_one_scan(vcsim, backend):
    refs = [GuestRef(name=n) for n in vcsim.vm_names()]
    counter = CallCounter(backend)
    guests = backend.find_guests(refs)
    assert [g.name for g in guests] == vcsim.vm_names()
    assert counter.calls.count('RetrievePropertiesEx') == 2 and 'get name' not in counter.calls


# -- capability flags ----------------------------------------------------------------------------------

def test_capability_flags_honoured_by_default_refuse_before_writing(inventory, conn):
    vm = inventory.new_vm()
    strict = dict(conn, honor_capability_flags=True)
    ref = GuestRef(name=vm.name)
    # vcsim reports every snapshot flag false: with the flags honoured nothing is written, loudly.
    with pytest.raises(UnsupportedError, match='snapshotOperationsSupported'):
        run(strict, present([ref], 'plain'))
    with VmwareBackend(strict) as backend:
        caps = backend.capabilities(backend.find_guest(ref))
    assert not caps.internal and not caps.memory and not caps.revert and not caps.quiesce
    assert 'memorySnapshotsSupported' in caps.reasons['memory']
    run(conn, present([ref], 'base'))
    with pytest.raises(UnsupportedError, match='revertToSnapshotSupported'):
        run(strict, Request(state='reverted', guests=[ref], snapshot_name='base'))
    assert snapshot_names(vm) == ['base']


def test_capability_flags_ignored_server_decides_and_a_dropped_memory_is_caught(inventory, conn):
    vm = inventory.new_vm()
    ref = GuestRef(name=vm.name)
    # vcsim accepts memory=true but stores no memory file: the backend notices, removes it, fails.
    with pytest.raises(ProviderError, match='stored no memory file.*removed again'):
        run(conn, present([ref], 'mem', memory=True))
    assert snapshot_names(vm) == []
    created = run(conn, present([ref], 'disk-only', memory=False))
    assert created['snapshot']['memory'] is False and created['changed'] is True


def test_quiesce_needs_running_tools_checked_first(inventory, conn):
    vm = inventory.new_vm()
    ref = GuestRef(name=vm.name)
    assert vm.guest.toolsRunningStatus == 'guestToolsNotRunning'
    with pytest.raises(QuiesceUnavailableError, match='VMware Tools are not running'):
        run(conn, present([ref], 'q', quiesce='required'))
    assert snapshot_names(vm) == []
    result = run(conn, present([ref], 'q', quiesce='preferred'))
    assert result['action'] == 'created' and result['snapshot']['quiesced'] is False
    assert any('fell back to a snapshot without quiescing' in w for w in result['warnings'])


def test_memory_of_a_powered_off_vm_is_refused(inventory, conn):
    vm = inventory.new_vm(power_on=False)
    with pytest.raises(UnsupportedError, match='no memory state to save'):
        run(conn, present([GuestRef(name=vm.name)], 'mem', memory=True))


def test_external_snapshots_are_refused(inventory, conn):
    vm = inventory.new_vm()
    with pytest.raises(UnsupportedError, match='always internal'):
        run(conn, present([GuestRef(name=vm.name)], 'ext', kind='external'))


# -- revert and power state ------------------------------------------------------------------------------

@pytest.mark.parametrize('start,power_state,expected', [
    ('on', 'restore', 'poweredOff'),     # a disk-only snapshot: off, as vCenter does (vcsim leaves it on)
    ('on', 'off', 'poweredOff'),
    ('on', 'on', 'poweredOn'),
    ('off', 'on', 'poweredOn'),
    ('off', 'restore', 'poweredOff'),
])
def test_power_state_after_revert_is_enforced_by_the_backend(inventory, conn, start, power_state, expected):
    vm = inventory.new_vm(power_on=start == 'on')
    ref = GuestRef(id=vm._moId)
    run(conn, present([ref], 'base'))
    run(conn, present([ref], 'later'))
    result = run(conn, Request(state='reverted', guests=[ref], snapshot_name='base', power_state=power_state))
    assert result['action'] == 'reverted'
    assert vm.runtime.powerState == expected
    with VmwareBackend(conn) as backend:
        records = backend.list_snapshots(backend.find_guest(ref))
    assert [r.name for r in records if r.current] == ['base']


def test_revert_to_a_snapshot_deep_in_the_tree(inventory, conn):
    vm = inventory.new_vm()
    ref = GuestRef(name=vm.name)
    for name in ('a', 'b', 'c'):
        run(conn, present([ref], name))
    run(conn, Request(state='reverted', guests=[ref], snapshot_name='b', power_state='on'))
    assert vm.snapshot.currentSnapshot._moId == next(
        n.snapshot._moId for n in vm.snapshot.rootSnapshotList[0].childSnapshotList if n.name == 'b')
    assert vm.runtime.powerState == 'poweredOn'


# -- records -----------------------------------------------------------------------------------------------

def test_marker_description_and_sizes(inventory, conn):
    vm = inventory.new_vm()
    ref = GuestRef(name=vm.name)
    result = run(conn, present([ref], 'marked', description='user text', expires_in='2d'))
    snap = result['snapshot']
    assert snap['description'] == 'user text' and snap['owner'] == 'savepoint.virt'
    assert snap['expires_at'].endswith('Z') and snap['id'].startswith('snapshot-')
    raw = vm.snapshot.rootSnapshotList[0].description
    assert raw.startswith('user text\n[savepoint.virt] {') and '"expires_at"' in raw
    # vcsim lists the .vmsn file in layoutEx with size 0: reported as 0, not invented
    assert snap['size_bytes'] == 0
    assert snap['provider_details']['state'] == 'poweredOn'


def test_info_without_guests_reports_every_vm(vcsim, inventory, conn):
    vm = inventory.new_vm()
    run(conn, present([GuestRef(id=vm._moId)], 'listed'))
    with VmwareBackend(conn) as backend:
        report = SnapshotEngine(backend).info()
    names = [g['guest']['name'] for g in report['guests']]
    assert set(vcsim.vm_names()) <= set(names) and vm.name in names
    mine = next(g for g in report['guests'] if g['guest']['id'] == vm._moId)
    assert mine['current'] == 'listed' and mine['snapshots'][0]['owner'] == 'savepoint.virt'


# -- bulk and waiting ----------------------------------------------------------------------------------------

def test_bulk_snapshot_set_of_many_guests(vcsim, conn):
    # how fast a bulk set is: benchmarks/vmware_vs_community.py --bulk; that its tasks are waited
    # for together: test_bulk_tasks_are_waited_for_together
    refs = [GuestRef(name=n) for n in vcsim.vm_names()]
    created = run(conn, present(refs, 'bulk-set'))
    assert len(created['results']) == len(refs) == vcsim.vm_count >= 100  # every VM of the session's vcsim: many
    assert all(r['action'] == 'created' and r['snapshot']['name'] == 'bulk-set' for r in created['results'])
    assert all(r['operations'][0]['id'].startswith('task-') for r in created['results'])
    again = run(conn, present(refs, 'bulk-set'))
    assert again['changed'] is False
    removed = run(conn, Request(state='absent', guests=refs, snapshot_name='bulk-set'))
    assert all(r['action'] == 'deleted' for r in removed['results'])


def test_bulk_tasks_are_waited_for_together(vcsim, conn, monkeypatch):
    calls = []
    original = VmwareBackend._wait_tasks

    def spy(self, ops, *args):
        calls.append(len(ops))
        return original(self, ops, *args)
    monkeypatch.setattr(VmwareBackend, '_wait_tasks', spy)
    refs = [GuestRef(name=n) for n in vcsim.vm_names()[:20]]
    run(conn, present(refs, 'together'))
    run(conn, Request(state='absent', guests=refs, snapshot_name='together'))
    # create: one wait for the 20 tasks (the verification follow-ups start no task); delete: one
    assert calls[0] == 20 and calls[-1] == 20 and len(calls) == 2


def test_wait_false_returns_task_ids(inventory, conn):
    vm = inventory.new_vm()
    ref = GuestRef(name=vm.name)
    request = present([ref], 'nowait')
    request.wait = False
    result = run(conn, request)
    assert result['action'] == 'started'
    ops = result['results'][0]['operations']
    assert ops[0]['id'].startswith('task-') and ops[0]['done'] is False
    assert snapshot_names(vm) == ['nowait']   # vcsim finishes tasks inside the call


def test_set_rollback_removes_what_was_created(inventory, conn, monkeypatch):
    """vcsim never faults on create: one guest's create is made to fail, the rest is real."""
    vms = [inventory.new_vm(), inventory.new_vm(), inventory.new_vm()]
    refs = [GuestRef(name=vm.name) for vm in vms]
    original = VmwareBackend.start_create

    def flaky(self, guest, spec):
        if guest.name == vms[1].name:
            raise ProviderError('injected failure')
        return original(self, guest, spec)
    monkeypatch.setattr(VmwareBackend, 'start_create', flaky)
    with pytest.raises(PartialFailureError, match='rolled back') as err:
        run(conn, present(refs, 'set'))
    results = err.value.details['results']
    assert [r.get('rolled_back', False) for r in results] == [True, False, True]
    assert all(snapshot_names(vm) == [] for vm in vms)


def slow_vcsim() -> VcsimServer:
    """A vcsim of its own (the test breaks it) whose every CreateSnapshot answer is delayed, so that
    what the test does to the server lands in the middle of a bulk run."""
    server = VcsimServer(vms_per_pool=10, extra_args=['-method-delay', 'CreateSnapshot_Task:200'])
    server.start()
    return server


def slow_vcsim_request(server: VcsimServer):
    """The connection options and every guest of a slow_vcsim()."""
    conn = {'hostname': server.host, 'port': server.port, 'username': 'u', 'password': 'p',
            'validate_certs': False, 'honor_capability_flags': False}
    return conn, [GuestRef(name=n) for n in server.vm_names()]


def test_vcsim_killed_during_a_bulk_run_fails_clearly_and_a_rerun_converges():
    server = slow_vcsim()
    try:
        conn, refs = slow_vcsim_request(server)
        killer = threading.Timer(1.0, server.kill)
        killer.start()
        timeout = 30
        t0 = time.monotonic()
        with pytest.raises(PartialFailureError) as err:
            run(conn, present(refs, 'crash-set'), timeout=timeout)
        elapsed = time.monotonic() - t0
        killer.join()
        msg = err.value.msg
        assert elapsed < timeout  # it failed on the lost connection, not at the deadline
        assert 'lost the connection to vSphere' in msg
        # Guests whose task was under way are not claimed to be clean: their outcome is unknown.
        assert 'may have been created' in msg and 'check the guest before retrying' in msg
        for result in err.value.details['results']:
            assert result['changed'] is False and result['action'] == 'failed'
        # The server comes back (vcsim keeps no state: a fresh inventory) and the same request converges.
        server.stop()
        server.start()
        conn['port'] = server.port
        first = run(conn, present(refs, 'crash-set'))
        assert all(r['action'] == 'created' for r in first['results'])
        second = run(conn, present(refs, 'crash-set'))
        assert second['changed'] is False
    finally:
        server.stop()


def test_vcsim_frozen_during_a_bulk_run_fails_within_the_timeout_and_a_rerun_converges(monkeypatch):
    """SIGSTOP: the server keeps its connections open and answers nothing (a hung vCenter)."""
    monkeypatch.setattr(vmware_module.session, 'HTTP_TIMEOUT', 3)
    margin = use_short_margin(monkeypatch)  # the left leases expire within seconds, not a minute
    server = slow_vcsim()
    try:
        conn, refs = slow_vcsim_request(server)
        freezer = threading.Timer(1.0, os.kill, (server.pid, signal.SIGSTOP))
        freezer.start()
        timeout = 20
        t0 = time.monotonic()
        try:
            with pytest.raises(PartialFailureError) as err:
                run(conn, present(refs, 'frozen-set'), timeout=timeout)
            elapsed = time.monotonic() - t0
        finally:
            freezer.join()
            os.kill(server.pid, signal.SIGCONT)
        assert elapsed < timeout  # the 3 s HTTP timeout ends the frozen calls within the task timeout
        msg = err.value.msg
        assert 'may have been started on the server' in msg and 'broke earlier in this task' in msg
        assert all(r['changed'] is False for r in err.value.details['results'])
        # The server wakes up with whatever it did before it froze; the same request converges on that.
        # The frozen run could not release its leases (the connection was broken): the re-run waits for
        # them to expire (timeout + margin after they were taken) and takes them over, saying so.
        first = run(conn, present(refs, 'frozen-set'), timeout=timeout + margin + 60)
        actions = [r['action'] for r in first['results']]
        assert set(actions) <= {'created', 'exists'} and 'exists' in actions
        assert any('took over a stale lease' in w for w in first['warnings']), first['warnings']
        second = run(conn, present(refs, 'frozen-set'))
        assert second['changed'] is False
        with VmwareBackend(conn) as backend:
            for guest in backend.find_guests(refs):
                assert [s.name for s in backend.list_snapshots(guest)] == ['frozen-set']
    finally:
        server.stop()

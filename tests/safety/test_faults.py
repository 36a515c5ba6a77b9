"""Faults suite (issue 9): the provider frozen (SIGSTOP) or killed (SIGKILL) under a create, a revert
and a delete. Each case: a clear failure within the task's timeout (plus the provider's own fixed
waits, named below), no snapshot left that the result does not mention, and a re-run that converges.

One table (FAULTS), one runner per provider:
- libvirt: the guest's own QEMU process is frozen/killed (never the shared libvirtd); a frozen QEMU
  never answers savevm/loadvm/delvm, so this is also what proves the backend's deadline holds.
- VMware: a vcsim of this test, with the snapshot method delayed so that the fault lands mid-task.
- OpenStack: nova-compute or glance-api of the shared stack (run under its lock), frozen or killed right
  after the create or rebuild was accepted, or right before the delete (see OS_WHEN).
- libvirtd itself frozen/killed while the operation is in flight in it (test_libvirtd_fault, last in this
  module; it breaks every open libvirt connection, so run it only under `flock -x
  /tmp/savepoint-libvirtd.lock`); libvirtd is brought back with tests/services/libvirt/up.sh.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import libvirt
import pytest

from ansible_collections.savepoint.virt.plugins.module_utils import _backends
from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import (
    SYNC_GRACE_SECONDS, LibvirtBackend,
)
from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import backend as libvirt_backend
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import SavepointError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from lease_margin import SHORT_MARGIN_SECONDS, use_short_margin

TINY_GUEST_PREFIX = 'sp-safety'

#: the faulted run's timeout: a frozen provider makes the run wait all of it, so it is short; it only has to leave
#: the call time to be in flight when the fault lands (INJECT_AFTER) and the run time to see the fault
TIMEOUT = 10.0
#: seconds from freezing the provider under the call to killing it (QEMU, nova-compute, glance), or from the start
#: of the run to freezing/killing libvirtd: the call is then surely in flight, and the deadline still ahead
INJECT_AFTER = 5.0
#: the set-up runs (the base snapshot) on the healthy provider: a bound, never waited out
SETUP_TIMEOUT = 60.0
#: The lease margin of this suite's runs (the module's is LEASE_MARGIN_SECONDS, 60 s; see tests/lease_margin.py): a
#: run whose release hung leaves its lease, and the re-run waits for it to expire and takes it over. The provider has
#: finished before the re-run (libvirt: wait_job_done; OpenStack: os_settle; vcsim: its delayed method ends within a
#: second of SIGCONT, a killed vcsim is replaced).
FAULT_LEASE_MARGIN = SHORT_MARGIN_SECONDS
#: a re-run after a fault may first wait for the lease the failed run had to leave on a hung guest
RERUN_TIMEOUT = TIMEOUT + FAULT_LEASE_MARGIN + 60
#: The libvirt backend's bound on one lease read/write (LEASE_CALL_SECONDS, 20 s) under the faulted run: on a
#: frozen QEMU or libvirtd every such call hangs until then (the elapsed bounds allow two per run). The
#: healthy calls take milliseconds; the assertions bound the elapsed time by this value, so they still fail a run
#: that does not keep it.
FAULT_LEASE_CALL_SECONDS = 5.0
PHASES = ('create', 'revert', 'delete')
FAULT_KINDS = ('freeze', 'kill')
FAULTS = [(p, f) for p in PHASES for f in FAULT_KINDS]
INJECTED = {'count': 0}
#: faults the provider recovered from by itself (the task then succeeded, truthfully)
RECOVERED: list = []


def request(refs, phase, name):
    if phase == 'create':
        return Request(state='present', guests=refs, snapshot_name=name,
                       spec=SnapshotSpec(name=name, marker=make_marker(None, 'faults-suite', None)))
    if phase == 'revert':
        return Request(state='reverted', guests=refs, snapshot_name=name)
    return Request(state='absent', guests=refs, snapshot_name=name)


@pytest.fixture(autouse=True)
def short_lease_margin(monkeypatch):
    use_short_margin(monkeypatch)


@contextlib.contextmanager
def short_lease_calls():
    """FAULT_LEASE_CALL_SECONDS for the libvirt backend's lease calls, for the faulted run only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(libvirt_backend, 'LEASE_CALL_SECONDS', FAULT_LEASE_CALL_SECONDS)
        yield


def run(backend_cls, conn, req, timeout=TIMEOUT):
    with backend_cls(conn) as backend:
        return SnapshotEngine(backend, wait_policy=WaitPolicy(timeout=timeout)).run(req)


def assert_rerun_converges(backend_cls, conn, refs, phase, name) -> None:
    """The re-run after a fault succeeds, and a second one changes nothing (a revert always reverts)."""
    first = run(backend_cls, conn, request(refs, phase, name), timeout=RERUN_TIMEOUT)
    assert first['results'][0]['action'] in ('created', 'exists', 'reverted', 'deleted', 'absent'), first['msg']
    second = run(backend_cls, conn, request(refs, phase, name), timeout=RERUN_TIMEOUT)
    if phase != 'revert':
        assert second['changed'] is False, second['msg']


def run_failing(backend_cls, conn, req, timeout=TIMEOUT):
    """(error or None, result or None, seconds): the provider may also recover on its own (libvirt restarts
    a QEMU that died under a revert); then the result must be true, which the callers check."""
    started = time.monotonic()
    try:
        result = run(backend_cls, conn, req, timeout)
    except SavepointError as exc:
        return exc, None, time.monotonic() - started
    return None, result, time.monotonic() - started


def target(phase):
    return 'made-under-fault' if phase == 'create' else 'base'


def mentioned(error: SavepointError) -> str:
    return '%s %s %s' % (error.msg, error.provider_message or '', error.details)


# -- libvirt: the guest's QEMU ----------------------------------------------------------------
def qemu_pid(guest) -> int:
    return int(Path('/run/libvirt/qemu/%s.pid' % guest.name).read_text().strip())


def libvirt_names(guest):
    return sorted(s.getName() for s in guest.dom.listAllSnapshots(0))


def wait_job_done(guest, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if guest.dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                return
        except libvirt.libvirtError:
            return
        time.sleep(0.2)


@pytest.mark.qemu
@pytest.mark.parametrize('phase,fault', FAULTS)
def test_libvirt_qemu_fault(tiny_guests, phase, fault):
    guest = tiny_guests()
    conn = {'uri': 'qemu:///system'}
    refs = [GuestRef(name=guest.name)]
    if phase != 'create':
        run(LibvirtBackend, conn, request(refs, 'create', 'base'))
    name = target(phase)
    pid = qemu_pid(guest)
    os.kill(pid, signal.SIGSTOP)
    INJECTED['count'] += 1
    try:
        if fault == 'freeze':
            with short_lease_calls():
                error, result, elapsed = run_failing(LibvirtBackend, conn, request(refs, phase, name))
        else:
            # The call is in flight on the frozen QEMU; then QEMU dies under it.
            killer = threading.Timer(INJECT_AFTER, os.kill, (pid, signal.SIGKILL))
            killer.start()
            with short_lease_calls():
                error, result, elapsed = run_failing(LibvirtBackend, conn, request(refs, phase, name))
            killer.join()
        # the deadline, the first call's grace, and the lease read+write that give up on the hung domain
        assert elapsed < TIMEOUT + SYNC_GRACE_SECONDS + 2 * FAULT_LEASE_CALL_SECONDS + 10, elapsed
        if error is not None:
            if error.kind == 'timeout':
                assert 'did not finish within %ds' % TIMEOUT in error.msg and 'check before retrying' in error.msg
            else:
                assert error.kind in ('provider_error', 'connection_failed', 'partial_failure'), error.msg
            assert guest.name in error.msg and name in mentioned(error)
        else:
            RECOVERED.append('libvirt %s %s' % (phase, fault))
            assert result['changed'] is True and result['results'][0]['action'] in ('reverted', 'deleted',
                                                                                    'created'), result['msg']
            if phase == 'delete':
                assert 'base' not in libvirt_names(guest)
            if phase == 'create':
                assert name in libvirt_names(guest)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    wait_job_done(guest, RERUN_TIMEOUT)
    # Nothing the result does not mention: only the snapshot that was asked for (and the base).
    assert set(libvirt_names(guest)) <= {'base', name}
    # The re-run converges: it succeeds, and a second one changes nothing (a revert always reverts).
    assert_rerun_converges(LibvirtBackend, conn, refs, phase, name)
    expected = {'create': ['made-under-fault'], 'revert': ['base'], 'delete': []}[phase]
    assert libvirt_names(guest) == expected


# -- VMware: this test's own vcsim ------------------------------------------------------------
HTTP_TIMEOUT = 5
METHOD = {'create': 'CreateSnapshot_Task', 'revert': 'RevertToSnapshot_Task', 'delete': 'RemoveSnapshot_Task'}


@pytest.mark.vmware
@pytest.mark.parametrize('phase,fault', FAULTS)
def test_vcsim_fault(monkeypatch, phase, fault):
    from ansible_collections.savepoint.virt.plugins.module_utils._backends import vmware as vmware_module
    from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend

    from services.vcsim import VcsimServer
    assert _backends is not None
    # One HTTP request may hang this long on a frozen server (the module's default is 60s).
    monkeypatch.setattr(vmware_module.session, 'HTTP_TIMEOUT', HTTP_TIMEOUT)
    server = VcsimServer(vms_per_pool=1, extra_args=['-method-delay', '%s:%d' % (METHOD[phase], 2500)])
    server.start()
    try:
        conn = {'hostname': server.host, 'port': server.port, 'username': 'u', 'password': 'p',
                'validate_certs': False, 'honor_capability_flags': False}
        vm = server.vm_names()[0]
        refs = [GuestRef(name=vm)]
        if phase != 'create':
            run(VmwareBackend, conn, request(refs, 'create', 'base'), timeout=SETUP_TIMEOUT)
        name = target(phase)
        act = (lambda: os.kill(server.pid, signal.SIGSTOP)) if fault == 'freeze' else server.kill
        # after the lease is taken (1s settle) and while the delayed snapshot method is under way
        injector = threading.Timer(2.0, act)
        injector.start()
        INJECTED['count'] += 1
        try:
            error, result, elapsed = run_failing(VmwareBackend, conn, request(refs, phase, name))
        finally:
            injector.join()
            if fault == 'freeze':
                os.kill(server.pid, signal.SIGCONT)
        # the deadline, plus hung HTTP requests: the operation's, the lease read and write
        assert elapsed < TIMEOUT + 4 * HTTP_TIMEOUT + 5, elapsed
        assert error is not None, 'the fault did not fail the task: %s' % (result or {}).get('msg')
        assert error.kind in ('timeout', 'connection_failed', 'provider_error', 'partial_failure'), error.msg
        assert vm in error.msg or vm in str(error.details), error.msg
        if fault == 'kill':
            # vcsim keeps no state: a fresh server, the same inventory, the set-up done again.
            server.stop()
            server.start()
            conn['port'] = server.port
            if phase != 'create':
                run(VmwareBackend, conn, request(refs, 'create', 'base'), timeout=SETUP_TIMEOUT)
        with VmwareBackend(conn) as backend:
            names = {s.name for s in backend.list_snapshots(backend.find_guest(refs[0]))}
        assert names <= {'base', name}, names
        assert_rerun_converges(VmwareBackend, conn, refs, phase, name)
        with VmwareBackend(conn) as backend:
            names = sorted(s.name for s in backend.list_snapshots(backend.find_guest(refs[0])))
        assert names == {'create': ['made-under-fault'], 'revert': ['base'], 'delete': []}[phase], names
    finally:
        server.stop()


# -- OpenStack: nova-compute and glance-api of the shared stack ---------------------------------
#: one API request may hang this long on a frozen service (the backend's default is 120 s)
OS_API_TIMEOUT = 5
OS_SERVICES = ('nova-compute', 'glance')
OS_FAULTS = [(s, p, f) for s in OS_SERVICES for p in PHASES for f in FAULT_KINDS]
#: when the fault lands: right after the create/rebuild request was accepted (the operation is in
#: flight on nova-compute, its image upload on glance); a delete of an image-backed snapshot is one
#: Glance call, finished inside start_delete, so its fault lands right before that call.
OS_WHEN = {'create': 'after', 'revert': 'after', 'delete': 'before'}
OS_START = {'create': 'start_create', 'revert': 'start_revert', 'delete': 'start_delete'}


def os_images(sdk, server_id):
    """Every image of the server that Glance still has (any status but gone), as {name: status}."""
    found = {}
    for image in sdk.image.images(owner=sdk.current_project_id):
        if image.instance_uuid == server_id and image.status not in ('deleted', 'pending_delete'):
            assert image.name not in found, 'two images named %s' % image.name
            found[image.name] = image.status
    return found


def os_settle(sdk, server_id, limit):
    """The server once Nova has finished with it (no task state), or after ``limit`` seconds (stuck)."""
    deadline = time.monotonic() + limit
    server = sdk.compute.get_server(server_id)
    while server.task_state and server.status != 'ERROR' and time.monotonic() < deadline:
        time.sleep(0.5)
        server = sdk.compute.get_server(server_id)
    return server


#: how long a server may stay in a task once the service is back before it counts as left stuck by Nova
#: (the fake driver's operations take well under a second)
OS_STUCK_AFTER = 60


#: faults after which Nova itself left the server in ERROR (needing an admin's reset-state)
NOVA_GAVE_UP: list = []


@pytest.mark.openstack
@pytest.mark.parametrize('service,phase,fault', OS_FAULTS)
def test_openstack_service_fault(monkeypatch, service, phase, fault):
    from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend

    from contract.harness_openstack import StackServers, connection, shared_stack
    stack = shared_stack()
    servers = StackServers(stack)
    sdk = servers.conn
    conn = connection(api_timeout=OS_API_TIMEOUT)
    injected = {}

    def inject():
        pid = stack.pid(service)
        assert pid, '%s is not running' % service
        injected['pid'] = pid
        os.killpg(pid, signal.SIGSTOP)
        if fault == 'kill':
            # the request is in flight on the frozen service; then the service dies under it
            injected['killer'] = threading.Timer(INJECT_AFTER, os.killpg, (pid, signal.SIGKILL))
            injected['killer'].start()
        INJECTED['count'] += 1

    real_start = getattr(OpenStackBackend, OS_START[phase])

    def start_under_fault(self, *args, **kwargs):
        if OS_WHEN[phase] == 'before':
            inject()
            return real_start(self, *args, **kwargs)
        op = real_start(self, *args, **kwargs)
        inject()
        return op

    try:
        server = servers.boot()
        refs = [GuestRef(id=server.id)]
        if phase != 'create':
            run(OpenStackBackend, conn, request(refs, 'create', 'base'), timeout=SETUP_TIMEOUT)
        name = target(phase)
        with monkeypatch.context() as patch:
            patch.setattr(OpenStackBackend, OS_START[phase], start_under_fault)
            try:
                error, result, elapsed = run_failing(OpenStackBackend, conn, request(refs, phase, name))
            finally:
                if 'killer' in injected:
                    injected['killer'].join()
                if 'pid' in injected:
                    try:
                        os.killpg(injected['pid'], signal.SIGCONT)
                    except ProcessLookupError:
                        pass
        assert injected, 'the fault was never injected'
        # the deadline, plus requests hung on the frozen service (the operation's, the cleanup's, the lease's)
        assert elapsed < TIMEOUT + 6 * OS_API_TIMEOUT + 10, elapsed
        if error is not None:
            assert error.kind in ('timeout', 'connection_failed', 'provider_error', 'partial_failure'), error.msg
            assert server.name in error.msg or server.id in mentioned(error), error.msg
            assert name in mentioned(error), error.msg
            if error.kind == 'timeout':
                assert 'did not finish within %ds' % TIMEOUT in error.msg or 'timed out' in error.msg, error.msg
        else:
            # the fault did not touch this operation (a delete is Glance only; nova-compute is not in it)
            RECOVERED.append('openstack %s %s %s' % (service, phase, fault))
            assert result['changed'] is True and result['results'][0]['action'] in (
                'created', 'reverted', 'deleted'), result['msg']
        if fault == 'kill':
            stack.start_service(service)  # start.sh restarts only what is missing
        settled = os_settle(sdk, server.id, OS_STUCK_AFTER)
        # Nothing the result does not mention: only the snapshot that was asked for (and the base).
        assert set(os_images(sdk, server.id)) <= {'base', name}, os_images(sdk, server.id)
        if settled.status == 'ERROR' or settled.task_state:
            # nova-compute killed under a rebuild: the restarted one clears the task, then the rebuild message
            # is delivered again and fails half-way, leaving the server in ERROR or stuck in REBUILD; Nova acts
            # on it again only after an admin's reset-state. Until then a re-run must fail clearly, naming the
            # server and its state, and write nothing.
            NOVA_GAVE_UP.append('openstack %s %s %s' % (service, phase, fault))
            images = os_images(sdk, server.id)
            refused, _result, _elapsed = run_failing(OpenStackBackend, conn, request(refs, phase, name))
            assert refused is not None, 'a re-run acted on a server Nova left in %s' % settled.status
            assert settled.status in refused.msg and server.name in refused.msg, refused.msg
            assert os_images(sdk, server.id) == images
            admin = stack.connect('stack-admin')
            try:
                admin.compute.reset_server_state(server.id, 'active')
            finally:
                admin.close()
        # The re-run converges: it succeeds, and a second one changes nothing (a revert always reverts).
        assert_rerun_converges(OpenStackBackend, conn, refs, phase, name)
        expected = {'create': {'made-under-fault': 'active'}, 'revert': {'base': 'active'}, 'delete': {}}[phase]
        assert os_images(sdk, server.id) == expected
    finally:
        # the shared stack is healthy afterwards, whatever happened above
        if 'pid' in injected:
            try:
                os.killpg(injected['pid'], signal.SIGCONT)
            except ProcessLookupError:
                pass
        stack.ensure_running()
        try:
            servers.cleanup()
        finally:
            sdk.close()


# -- libvirt: the libvirt daemon itself (last in this module: it breaks every open connection) --------
# Run these only while no one else uses libvirtd: on a shared machine under
# `flock -x /tmp/savepoint-libvirtd.lock` (others take it shared); in CI the tests run one after another.
# Every case brings libvirtd back (tests/services/libvirt/up.sh) in a finally.
UP_SH = Path(__file__).resolve().parent.parent / 'services' / 'libvirt' / 'up.sh'
#: a hung libvirt call is given up on after this long at the latest: the test's own safety net, never reached
#: by a backend that keeps its deadline (the assertion on the elapsed time fails first)
WATCHDOG_SECONDS = TIMEOUT + SYNC_GRACE_SECONDS + 4 * FAULT_LEASE_CALL_SECONDS + 60


def libvirtd_pid() -> int:
    """The daemon serving qemu:///system (as up.sh starts it: libvirtd, or virtqemud where it is gone)."""
    name = 'libvirtd' if Path('/usr/sbin/libvirtd').exists() else 'virtqemud'
    pid = int(Path('/run/%s.pid' % name).read_text().strip())
    assert Path('/proc/%d/comm' % pid).read_text().strip() == name, 'no %s running' % name
    return pid


def resume(pid: int) -> None:
    """SIGCONT, when the process still exists (a revert may have replaced the guest's QEMU)."""
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def restore_libvirtd(pid: int) -> None:
    resume(pid)
    proc = subprocess.run(['bash', str(UP_SH)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, 'libvirtd did not come back: %s' % proc.stderr


@pytest.mark.qemu
@pytest.mark.parametrize('phase,fault', FAULTS)
def test_libvirtd_fault(phase, fault):
    from services.libvirt import TinyGuests, ensure_daemon
    ensure_daemon()
    qemu = libvirt.open('qemu:///system')
    guests = TinyGuests(qemu, prefix='%s-d' % TINY_GUEST_PREFIX)
    guest = guests()
    daemon = libvirtd_pid()
    try:
        _libvirtd_case(phase, fault, guest, guests, daemon)
    finally:
        # every connection to the old daemon may be dead (killed) or hung (frozen): a new one to clean up
        qemu = libvirt.open('qemu:///system')
        guests.conn = guest.conn = qemu
        try:
            guest.dom = qemu.lookupByName(guest.name)
        except libvirt.libvirtError:
            guest.dom = None
        guests.destroy()
        qemu.close()


def _libvirtd_case(phase, fault, guest, guests, daemon) -> None:
    conn = {'uri': 'qemu:///system'}
    refs = [GuestRef(name=guest.name)]
    try:
        if phase != 'create':
            run(LibvirtBackend, conn, request(refs, 'create', 'base'))
        name = target(phase)
        # The guest's QEMU is stopped first, so that the operation is surely in flight in libvirtd (waiting on
        # QEMU's monitor) when libvirtd is frozen or killed; QEMU goes on at that moment.
        pid = qemu_pid(guest)
        os.kill(pid, signal.SIGSTOP)
        INJECTED['count'] += 1

        def inject() -> None:
            os.kill(daemon, signal.SIGSTOP if fault == 'freeze' else signal.SIGKILL)
            resume(pid)
        injector = threading.Timer(INJECT_AFTER, inject)
        watchdog = threading.Timer(WATCHDOG_SECONDS, os.kill, (daemon, signal.SIGCONT))
        injector.start()
        watchdog.start()
        try:
            with short_lease_calls():
                error, result, elapsed = run_failing(LibvirtBackend, conn, request(refs, phase, name))
        finally:
            injector.join()
            watchdog.cancel()
            resume(pid)
        # the deadline, the first call's grace, and the lease read+write that give up on the hung daemon
        assert elapsed < TIMEOUT + SYNC_GRACE_SECONDS + 2 * FAULT_LEASE_CALL_SECONDS + 10, elapsed
        assert error is not None, 'libvirtd %s under %s went unnoticed: %s' % (fault, phase, (result or {}).get('msg'))
        if error.kind == 'timeout':
            assert 'did not finish within %ds' % TIMEOUT in error.msg and 'check before retrying' in error.msg
        else:
            assert error.kind in ('provider_error', 'connection_failed', 'partial_failure'), error.msg
        assert guest.name in error.msg and name in mentioned(error), error.msg
    finally:
        restore_libvirtd(daemon)
    # a connection to the daemon as it is now, for the checks below
    qemu = libvirt.open('qemu:///system')
    guests.conn = guest.conn = qemu
    guest.dom = qemu.lookupByName(guest.name)
    wait_job_done(guest, RERUN_TIMEOUT)
    # Nothing the result does not mention: only the snapshot that was asked for (and the base).
    assert set(libvirt_names(guest)) <= {'base', name}
    # The re-run converges: it succeeds, and a second one changes nothing (a revert always reverts).
    assert_rerun_converges(LibvirtBackend, conn, refs, phase, name)
    expected = {'create': [name], 'revert': ['base'], 'delete': []}[phase]
    assert libvirt_names(guest) == expected

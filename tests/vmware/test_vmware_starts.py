"""Task starts sent together (starts.py, transport.py) on vcsim: each start's outcome is what it is alone.

A fault ends its own start only; a start that fails after queueing its call sends nothing; a server
that stops answering mid-group leaves "may have been started" on what was sent and "not started" on
what was not, after one socket timeout, not one per request under way.
"""

from __future__ import annotations

import time

import pytest
from pyVmomi import vim

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend, starts
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    ConnectionFailedError, InvalidRequestError, SnapshotNotFoundError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotRecord, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation, WaitPolicy

from services.vcsim import VcsimServer

pytestmark = pytest.mark.vmware


def spec(name: str) -> SnapshotSpec:
    return SnapshotSpec(name=name, marker=make_marker(None, 'test'))


def count_sends(monkeypatch, backend) -> list:
    """The groups of requests the backend sent together."""
    groups = []
    real = backend._send_together  # pylint: disable=protected-access

    def send(collector, requests):
        groups.append([info.wsdlName for _mo, info, _args in requests])
        return real(collector, requests)
    monkeypatch.setattr(backend, '_send_together', send)
    return groups


def names(backend, guest) -> list:
    return sorted(s.name for s in backend.list_snapshots(backend.refresh_guest(guest)))


def test_a_group_of_starts_gives_each_its_own_outcome_and_sends_nothing_for_a_failed_start(
        inventory, backend, monkeypatch):
    vms = [inventory.new_vm() for _index in range(5)]
    guests = backend.find_guests([GuestRef(name=vm.name) for vm in vms])
    alone = backend.start_create(guests[2], spec('base'))   # sent at once: outside a group
    backend.wait([alone], WaitPolicy(timeout=60))
    assert alone.error is None
    base = next(s for s in backend.list_snapshots(backend.refresh_guest(guests[2])) if s.name == 'base')
    gone = SnapshotRecord(name='gone', id='snapshot-does-not-exist')
    groups = count_sends(monkeypatch, backend)

    def fails_after_queueing():
        backend.start_create(guests[3], spec('together'))
        raise InvalidRequestError('this start fails after its call was queued')
    outcomes = backend.start_together([
        lambda: backend.start_create(guests[0], spec('together')),
        lambda: backend.start_delete(guests[1], gone, False),     # vSphere: no such snapshot
        lambda: backend.start_delete(guests[2], base, False),
        fails_after_queueing,
        lambda: backend.start_create(guests[4], spec('together')),
    ])
    # one group of the four calls whose starts did not fail; nothing of the failed start was sent
    assert groups == [['CreateSnapshot_Task', 'RemoveSnapshot_Task', 'RemoveSnapshot_Task', 'CreateSnapshot_Task']]
    ops = [outcomes[i] for i in (0, 2, 4)]
    assert all(isinstance(op, Operation) and isinstance(op.handle, vim.Task) and op.id == op.handle._moId
               for op in ops), outcomes
    assert isinstance(outcomes[1], SnapshotNotFoundError) and guests[1].name in outcomes[1].msg
    assert isinstance(outcomes[3], InvalidRequestError)
    # the fault reads as it does for a start alone
    with pytest.raises(SnapshotNotFoundError) as alone_fault:
        backend.start_delete(guests[1], gone, False)
    assert outcomes[1].msg == alone_fault.value.msg
    backend.wait(ops, WaitPolicy(timeout=60))
    assert all(op.complete and op.final_error is None for op in ops), [op.final_error for op in ops]
    assert names(backend, guests[0]) == names(backend, guests[4]) == ['together']
    assert names(backend, guests[2]) == [] and names(backend, guests[3]) == []


def test_the_engine_sends_a_windows_starts_together(inventory, conn, monkeypatch):
    from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
    vms = [inventory.new_vm() for _index in range(5)]
    refs = [GuestRef(name=vm.name) for vm in vms]
    with VmwareBackend(conn) as backend:
        groups = count_sends(monkeypatch, backend)
        made = SnapshotEngine(backend).run(Request(state='present', guests=refs, snapshot_name='w', parallel=3,
                                                   spec=spec('w')))
        assert [r['action'] for r in made['results']] == ['created'] * 5
        assert [len(g) for g in groups][0] == 3 and sum(len(g) for g in groups) == 5
        groups.clear()
        removed = SnapshotEngine(backend).run(Request(state='absent', guests=refs, snapshot_name='w'))
        assert [r['action'] for r in removed['results']] == ['deleted'] * 5
        assert groups == [['RemoveSnapshot_Task'] * 5]   # the default window (32) has room for all


def test_a_server_that_stops_answering_mid_group_costs_one_socket_timeout_and_says_what_was_sent():
    # vcsim answers each snapshot creation after 3 s: the first answer read outlasts a 1 s socket timeout
    server = VcsimServer(vms_per_pool=4, extra_args=['-method-delay', 'CreateSnapshot_Task:3000'])
    server.start()
    try:
        conn = {'hostname': server.host, 'port': server.port, 'username': 'u', 'password': 'p',
                'validate_certs': False, 'honor_capability_flags': False}
        count = starts.START_WIDTH + 2
        with VmwareBackend(conn) as backend:
            guests = backend.find_guests([GuestRef(name=n) for n in server.vm_names()[:count]])
            socket_timeout = 1.0
            backend._socket_timeout(socket_timeout)  # pylint: disable=protected-access
            t0 = time.monotonic()
            outcomes = backend.start_together([
                (lambda guest=guest: backend.start_create(guest, spec('cut'))) for guest in guests])
            elapsed = time.monotonic() - t0
        assert elapsed < 2 * socket_timeout   # one timeout: the other answers under way are not waited for
        assert all(isinstance(o, ConnectionFailedError) for o in outcomes), outcomes
        width = starts.START_WIDTH
        # the first request read timed out, the others sent with it were not read: outcome unknown
        for outcome in outcomes[:width]:
            assert 'may have been started on the server: check the guest before retrying' in outcome.msg
        assert 'broke on another call' not in outcomes[0].msg
        assert all('broke on another call' in o.msg for o in outcomes[1:width])
        # the rest were never sent, and say so
        for outcome in outcomes[width:]:
            assert 'not started: the connection to vSphere broke earlier in this task' in outcome.msg
            assert 'may have been started' not in outcome.msg
        # what was said to be not started was not: once the server has done what it was sent
        time.sleep(3.5)
        with VmwareBackend(conn) as backend:
            later = backend.find_guests([GuestRef(name=g.name) for g in guests])
            assert all(backend.list_snapshots(g) == [] for g in later[width:])
    finally:
        server.stop()

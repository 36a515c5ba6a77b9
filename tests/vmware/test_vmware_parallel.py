"""``parallel`` on vcsim: the bound on a real vSphere API, sets rolled back across groups, one deadline.

vcsim finishes a task inside its ``*_Task`` call, so "in flight" is counted from the engine's side:
an operation is in flight from its start until a wait that covers it has returned with it complete.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pytest
from pyVim.connect import Disconnect

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import PartialFailureError, ProviderError
from ansible_collections.savepoint.virt.plugins.module_utils._module import build_request
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from services.vcsim import VcsimServer
from test_vmware_backend import snapshot_names

pytestmark = pytest.mark.vmware

GUESTS = 12


class InFlight:
    """Wraps the backend's start_* and wait to count operations started but not yet waited for."""

    def __init__(self, monkeypatch: Any) -> None:
        self.open: List[Any] = []
        self.peak = 0
        self.waits: List[int] = []
        self.actions: List[str] = []
        for name in ('start_create', 'start_revert', 'start_delete'):
            monkeypatch.setattr(VmwareBackend, name, self._starting(getattr(VmwareBackend, name)))
        real_wait = VmwareBackend.wait

        def wait(backend, operations, policy, progress=None, until_first=False):
            self.waits.append(len(operations))
            try:
                return real_wait(backend, operations, policy, progress, until_first)
            finally:
                # until_first returns with some still running: only the complete ones leave
                self.open = [op for op in self.open if op not in operations or not op.complete]
        monkeypatch.setattr(VmwareBackend, 'wait', wait)

    def _starting(self, real):
        def start(backend, *args, **kwargs):
            op = real(backend, *args, **kwargs)
            self.actions.append(op.action)
            self.open.append(op)
            self.peak = max(self.peak, len(self.open))
            return op
        return start

    def reset(self) -> None:
        self.open, self.peak, self.waits, self.actions = [], 0, [], []


def params(conn: Dict[str, Any], names: List[str], **options: Any) -> Dict[str, Any]:
    """Module options as Ansible hands them over (unset options None), turned into a Request below."""
    base = {key: None for key in ('snapshot_name', 'description', 'memory', 'quiesce', 'kind', 'power_state',
                                  'remove_children', 'remove_all', 'expires_in', 'owner', 'keep_last',
                                  'older_than', 'expired', 'all_or_nothing', 'timeout', 'wait', 'snapshot_id',
                                  'new_snapshot_name', 'new_description', 'consolidate', 'parallel', 'name',
                                  'uuid', 'moid', 'folder', 'include_volumes')}
    base.update(conn)
    base.update(guests=list(names), state='present')
    base.update(options)
    return base


def run(conn: Dict[str, Any], request: Request) -> Dict[str, Any]:
    with VmwareBackend(conn) as backend:
        return SnapshotEngine(backend, wait_policy=WaitPolicy(timeout=request.timeout)).run(request)


def test_parallel_bounds_create_revert_and_delete_on_vcsim(inventory, conn, monkeypatch):
    vms = [inventory.new_vm() for _index in range(GUESTS)]
    names = [vm.name for vm in vms]
    counter = InFlight(monkeypatch)
    for state, extra in (('present', {}), ('reverted', {}), ('absent', {})):
        counter.reset()
        request = build_request(params(conn, names, snapshot_name='par', state=state, parallel=5, **extra),
                                VmwareBackend, 'vmware_snapshot')
        assert request.parallel == 5
        result = run(conn, request)
        assert result['changed'] is True
        assert len(result['results']) == GUESTS
        assert counter.peak == 5, state
        assert counter.waits == [5, 5, 2], state   # three groups, each waited for before the next
    assert all(snapshot_names(vm) == [] for vm in vms)


def test_one_after_the_other_and_the_provider_default(inventory, conn, monkeypatch):
    vms = [inventory.new_vm() for _index in range(4)]
    names = [vm.name for vm in vms]
    counter = InFlight(monkeypatch)
    run(conn, build_request(params(conn, names, snapshot_name='one', parallel=1), VmwareBackend, 'vmware_snapshot'))
    assert counter.peak == 1 and counter.waits == [1, 1, 1, 1]
    counter.reset()
    # not set: vmware's default (32) is more than 4 guests, so all at once
    run(conn, build_request(params(conn, names, snapshot_name='one', state='absent'), VmwareBackend,
                            'vmware_snapshot'))
    assert counter.peak == 4 and counter.waits == [4]
    assert all(snapshot_names(vm) == [] for vm in vms)


def test_a_failed_set_is_rolled_back_across_groups_on_vcsim(inventory, conn, monkeypatch):
    vms = [inventory.new_vm() for _index in range(7)]
    names = [vm.name for vm in vms]
    counter = InFlight(monkeypatch)
    real = VmwareBackend.start_create

    def failing(backend, guest, spec):
        if guest.name == names[5]:
            raise ProviderError('the datastore is full (test)')
        return real(backend, guest, spec)
    monkeypatch.setattr(VmwareBackend, 'start_create', failing)
    with pytest.raises(PartialFailureError, match='rolled back') as err:
        run(conn, build_request(params(conn, names, snapshot_name='set', parallel=2), VmwareBackend,
                                'vmware_snapshot'))
    results = {r['guest']['name']: r for r in err.value.details['results']}
    assert len(results) == 7
    assert 'datastore is full' in results[names[5]]['msg']
    assert [results[n].get('rolled_back', False) for n in names] == [True] * 5 + [False, True]
    assert all(snapshot_names(vm) == [] for vm in vms)
    assert counter.peak <= 2


def test_the_deadline_ends_a_slow_bulk_run_and_later_guests_are_not_started(monkeypatch):
    """Every CreateSnapshot answer of this vcsim takes 1 s: with parallel 1 and a 3 s timeout most guests
    never get their turn. The task ends from its one deadline (not one per group) and the set is rolled back."""
    server = VcsimServer(vms_per_pool=5, extra_args=['-method-delay', 'CreateSnapshot_Task:1000'])
    server.start()
    try:
        conn = {'hostname': server.host, 'port': server.port, 'username': 'u', 'password': 'p',
                'validate_certs': False, 'honor_capability_flags': False}
        names = server.vm_names()
        assert len(names) == 10
        timeout = 3
        counter = InFlight(monkeypatch)
        t0 = time.monotonic()
        with pytest.raises(PartialFailureError) as err:
            run(conn, build_request(params(conn, names, snapshot_name='slow', parallel=1, timeout=timeout),
                                    VmwareBackend, 'vmware_snapshot'))
        elapsed = time.monotonic() - t0
        started = counter.actions.count('create')
        assert counter.actions.count('delete') == started   # each one rolled back
        # One timeout for the creates, one for the rollback (never delayed), plus one create past the deadline.
        assert elapsed < 2 * timeout + 1 + 5, elapsed
        assert 1 <= started < len(names)
        results = err.value.details['results']
        assert len(results) == len(names)
        not_started = [r for r in results if 'was not started' in r['msg']]
        assert len(not_started) == len(names) - started
        assert all('parallel=1' in r['msg'] and 'nothing was written' in r['msg'] for r in not_started)
        assert 'rolled back' in err.value.msg
        si = server.connect()
        try:
            index = si.RetrieveContent().searchIndex
            for name in names:   # what was created before the deadline was removed again
                assert snapshot_names(index.FindByInventoryPath('DC0/vm/%s' % name)) == [], name
        finally:
            Disconnect(si)
    finally:
        server.stop()

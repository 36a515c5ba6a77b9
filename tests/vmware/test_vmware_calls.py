"""What a bulk run costs in vSphere calls, on vcsim: per guest only what cannot be shared (two
``CreateFolder`` for its lease, its snapshot task, one ``Destroy_Task`` to release the lease), the rest a
constant per task or per group; file layouts read only for VMs that have snapshots, and the results as
true as a full ``layoutEx`` read gives them. Also the lease's renewal and release by moid on a real
vSphere API: a renewal of a lease another run took over fails, a release never removes the other run's.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List

import pytest
from pyVmomi import SoapAdapter

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend, snapshot_records
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware.lease import LEASE_FOLDER
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware.session import VmwareSession
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import ProviderError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker

pytestmark = pytest.mark.vmware

GUESTS = 40   # two groups of the default parallel (32)


class Calls:
    """Counts the SOAP methods invoked, and what each property retrieval asked for."""

    def __init__(self, monkeypatch: Any) -> None:
        self.methods: collections.Counter = collections.Counter()
        self.retrievals: List[Dict[str, Any]] = []
        real_invoke = SoapAdapter.SoapStubAdapter.InvokeMethod
        real_retrieve = VmwareSession._retrieve

        def invoke(stub, mo, info, args, outer=None):
            self.methods[info.wsdlName] += 1
            return real_invoke(stub, mo, info, args, outer)

        def retrieve(backend, objects, obj_type, paths, doing):
            objects = list(objects)
            self.retrievals.append({'objects': len(objects), 'paths': list(paths), 'doing': doing})
            return real_retrieve(backend, objects, obj_type, paths, doing)
        monkeypatch.setattr(SoapAdapter.SoapStubAdapter, 'InvokeMethod', invoke)
        monkeypatch.setattr(VmwareSession, '_retrieve', retrieve)

    def reset(self) -> None:
        self.methods.clear()
        self.retrievals = []

    def layouts_read(self) -> int:
        """VMs whose file layout was read (any layoutEx path)."""
        return sum(r['objects'] for r in self.retrievals if any(p.startswith('layoutEx') for p in r['paths']))


def test_a_bulk_create_and_delete_cost_four_calls_per_guest_and_report_what_a_full_read_reports(
        inventory, conn, monkeypatch):
    vms = [inventory.new_vm() for _index in range(GUESTS)]
    refs = [GuestRef(name=vm.name) for vm in vms]
    calls = Calls(monkeypatch)
    with VmwareBackend(conn) as backend:
        calls.reset()
        made = SnapshotEngine(backend).run(Request(
            state='present', guests=refs, snapshot_name='calls',
            spec=SnapshotSpec(name='calls', marker=make_marker(None, 'calls'))))
        create = dict(calls.methods)
        create_layouts = calls.layouts_read()
        calls.reset()
        removed = SnapshotEngine(backend).run(Request(state='absent', guests=refs, snapshot_name='calls'))
        delete = dict(calls.methods)
        delete_layouts = calls.layouts_read()
    assert [r['action'] for r in made['results']] == ['created'] * GUESTS
    assert [r['action'] for r in removed['results']] == ['deleted'] * GUESTS
    for methods, task in ((create, 'CreateSnapshot_Task'), (delete, 'RemoveSnapshot_Task')):
        assert methods[task] == GUESTS
        assert methods['CreateFolder'] == 2 * GUESTS         # the mutex and its lease text
        assert methods['Destroy_Task'] == GUESTS             # the release
        assert methods.get('Rename_Task', 0) == 0            # one round right after taking: no renewal
        assert methods.get('WaitForUpdates', 0) == 0         # no task waited for on its own (pyVim WaitForTask)
        assert methods.get('Fetch', 0) <= 4                  # no per-VM property reads (the lease's parent)
        assert sum(methods.values()) <= 4 * GUESTS + 40, methods
    # Layouts: a create reads none before it acts (the VMs have no snapshots), then each new snapshot's once;
    # a delete reads each once, under the lease (the lookup before it reads no trees).
    assert create_layouts == GUESTS
    assert delete_layouts == GUESTS
    assert all(r['snapshot'] is not None for r in made['results'])
    assert all(vm.snapshot is None for vm in vms)   # removed again


def test_sizes_and_memory_read_with_the_tree_agree_with_a_full_layout_read(inventory, conn):
    vms = [inventory.new_vm() for _index in range(3)]
    refs = [GuestRef(name=vm.name) for vm in vms]
    with VmwareBackend(conn) as backend:
        made = SnapshotEngine(backend).run(Request(
            state='present', guests=refs, snapshot_name='agree',
            spec=SnapshotSpec(name='agree', marker=make_marker(None, 'agree'))))
        looked = SnapshotEngine(backend).info(refs)
    for vm, created, listed in zip(vms, made['results'], looked['guests']):
        full = [r.to_dict() for r in snapshot_records(vm.snapshot, vm.layoutEx)]
        assert [s for s in full if s['name'] == 'agree'] == [created['snapshot']]
        assert full[0]['size_bytes'] is not None and created['cost']['size_bytes'] == full[0]['size_bytes']
        assert listed['snapshots'] == full
    with VmwareBackend(conn) as backend:
        SnapshotEngine(backend).run(Request(state='absent', guests=refs, snapshot_name='agree'))


def _mutex(inventory: Any, vm: Any) -> Any:
    return inventory.content.searchIndex.FindChild(inventory.dc.vmFolder, LEASE_FOLDER % vm._moId)


def test_a_lease_taken_over_fails_its_renewal_and_its_release_leaves_the_new_holder_alone(inventory, conn):
    vm = inventory.new_vm()
    with VmwareBackend(conn) as first, VmwareBackend(conn) as heir:
        guest = first.find_guest(GuestRef(name=vm.name))
        assert first.claim_lease(guest, 'spl1 1 1 first who', None)
        assert first.renew_leases([guest], 'spl1 2 1 first who') == {}
        assert [c.name for c in _mutex(inventory, vm).childEntity] == ['spl1 2 1 first who']
        # The lease expired and another run took it over: removed exactly as read, a new mutex made.
        other = heir.find_guest(GuestRef(name=vm.name))
        assert heir.claim_lease(other, 'spl1 9 9 heir who', 'spl1 2 1 first who')
        errors = first.renew_leases([guest], 'spl1 3 1 first who')
        assert isinstance(errors[guest.id], ProviderError) and 'lease of this run is gone' in errors[guest.id].msg
        assert first.release_leases([guest]) == {}   # its own folder is gone already: nothing to release
        mutex = _mutex(inventory, vm)
        assert mutex is not None and [c.name for c in mutex.childEntity] == ['spl1 9 9 heir who']
        assert heir.release_leases([other]) == {}
    assert _mutex(inventory, vm) is None

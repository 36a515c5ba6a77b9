"""What a bulk run costs in vSphere calls, on vcsim: per guest only what cannot be shared (its
snapshot task), the rest a constant per task or per group: the leases are one entry per run (one
``CreateFolder`` for it and one per 80 characters of moids, one ``Destroy_Task`` to release it); file
layouts read only for VMs that have snapshots, and the results as true as a full ``layoutEx`` read gives
them. Also the entries on a real vSphere API: a second run sees the first's entry, a stale one is removed
only as it was read, a renewal of an entry another run removed fails, a release never removes the other
run's.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List

import pytest
from pyVmomi import SoapAdapter

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import (
    VmwareBackend, fast_props, snapshot_records, starts,
)
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware.lease import REGISTRY_FOLDER, moid_lists
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
        real_send = fast_props.FastCollector.send

        def send(stub, mo, info, args):   # the property retrievals the backend sends itself
            self.methods[info.wsdlName] += 1
            return real_send(stub, mo, info, args)
        real_together = starts.VmwareStarts._send_together

        def together(backend, collector, requests):   # the task starts sent together
            for _mo, info, _args in requests:
                self.methods[info.wsdlName] += 1
            return real_together(backend, collector, requests)
        monkeypatch.setattr(starts.VmwareStarts, '_send_together', together)
        monkeypatch.setattr(SoapAdapter.SoapStubAdapter, 'InvokeMethod', invoke)
        monkeypatch.setattr(fast_props.FastCollector, 'send', staticmethod(send))
        monkeypatch.setattr(VmwareSession, '_retrieve', retrieve)

    def reset(self) -> None:
        self.methods.clear()
        self.retrievals = []

    def layouts_read(self) -> int:
        """VMs whose file layout was read (any layoutEx path)."""
        return sum(r['objects'] for r in self.retrievals if any(p.startswith('layoutEx') for p in r['paths']))


def test_a_bulk_create_and_delete_cost_one_call_per_guest_and_report_what_a_full_read_reports(
        inventory, conn, monkeypatch):
    vms = [inventory.new_vm() for _index in range(GUESTS)]
    refs = [GuestRef(name=vm.name) for vm in vms]
    calls = Calls(monkeypatch)
    registry_made = _registry(inventory) is None   # a datacenter's first run makes its registry
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
    lists = len(moid_lists([vm._moId for vm in vms]))  # pylint: disable=protected-access
    assert 1 < lists < GUESTS / 4
    for methods, task in ((create, 'CreateSnapshot_Task'), (delete, 'RemoveSnapshot_Task')):
        assert methods[task] == GUESTS
        made_here = registry_made and task == 'CreateSnapshot_Task'
        assert methods['CreateFolder'] == 1 + lists + made_here   # the run's entry and its moid lists
        assert methods['Destroy_Task'] == 1                  # the release: the entry
        assert methods.get('Rename_Task', 0) == 0            # one round right after taking: no renewal
        assert methods.get('WaitForUpdates', 0) == 0         # no task waited for on its own (pyVim WaitForTask)
        assert methods.get('Fetch', 0) <= 4                  # no per-VM property reads (the lease's parent)
        assert sum(methods.values()) <= GUESTS + 40, methods
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


def _registry(inventory: Any) -> Any:
    return inventory.content.searchIndex.FindChild(inventory.dc.vmFolder, REGISTRY_FOLDER)


def _entries(inventory: Any) -> Dict[str, List[str]]:
    """The registry as vSphere holds it: entry name -> the names of its children."""
    registry = _registry(inventory)
    return {e.name: [c.name for c in e.childEntity] for e in (registry.childEntity if registry else [])}


def test_entries_a_second_run_sees_the_first_a_stale_one_goes_only_as_read_a_lost_one_fails_renewal(
        inventory, conn):
    vms = [inventory.new_vm() for _index in range(3)]
    refs = [GuestRef(name=vm.name) for vm in vms]
    with VmwareBackend(conn) as first, VmwareBackend(conn) as second, VmwareBackend(conn) as heir:
        guests = [first.find_guest(r) for r in refs]
        assert first.claim_leases(guests, 'spl1 1 1 first000000 who') == {}
        assert first.renew_leases(guests, 'spl1 2 1 first000000 who') == {}
        moids = sorted(vm._moId for vm in vms)  # pylint: disable=protected-access
        assert _entries(inventory)['spl1 2 1 first000000 who'] == moid_lists(moids)
        # A second run over two of them (and a VM of its own) sees the first run's entry on those two only.
        extra = inventory.new_vm()
        theirs = [second.find_guest(r) for r in refs[1:] + [GuestRef(name=extra.name)]]
        seen = second.claim_leases(theirs, 'spl1 5 5 second00000 who')
        assert seen == {g.id: ['spl1 2 1 first000000 who'] for g in theirs[:2]}
        assert second.release_leases(theirs) == {}
        assert 'spl1 5 5 second00000 who' not in _entries(inventory)
        # The first run's entry expired; an heir reads it, the first run renews it (its name changes),
        # so the heir's removal leaves it alone; read again and removed as read, the first run's renewal fails.
        mine = [heir.find_guest(r) for r in refs[:1]]
        assert heir.claim_leases(mine, 'spl1 9 9 heir0000000 who') == {mine[0].id: ['spl1 2 1 first000000 who']}
        assert first.renew_leases(guests, 'spl1 3 1 first000000 who') == {}
        heir.drop_leases(['spl1 2 1 first000000 who'])
        assert 'spl1 3 1 first000000 who' in _entries(inventory)
        assert heir.release_leases(mine) == {}
        assert heir.claim_leases(mine, 'spl1 9 9 heir0000000 who') == {mine[0].id: ['spl1 3 1 first000000 who']}
        heir.drop_leases(['spl1 3 1 first000000 who'])
        assert list(_entries(inventory)) == ['spl1 9 9 heir0000000 who']
        errors = first.renew_leases(guests, 'spl1 4 1 first000000 who')
        assert sorted(errors) == sorted(g.id for g in guests)
        assert all(isinstance(e, ProviderError) and 'lease of this run is gone' in e.msg for e in errors.values())
        assert first.release_leases(guests) == {}   # its own entry is gone already: nothing to release
        assert list(_entries(inventory)) == ['spl1 9 9 heir0000000 who']
        assert heir.release_leases(mine) == {}
    assert _entries(inventory) == {}


def test_an_entry_whose_claim_fails_half_way_is_removed_again(inventory, conn, monkeypatch):
    """The keeper holds nothing until claim_leases returns, so a claim that fails after writing its entry (here:
    the read of the registry) must remove it itself, or it would block those VMs until it expired."""
    vms = [inventory.new_vm() for _index in range(2)]
    with VmwareBackend(conn) as backend:
        guests = [backend.find_guest(GuestRef(name=vm.name)) for vm in vms]

        def broken(registries):
            raise ProviderError('reading the lease registry failed: the server went away')
        monkeypatch.setattr(backend, '_read_registries', broken)
        with pytest.raises(ProviderError, match='went away'):
            backend.claim_leases(guests, 'spl1 7 7 half0000000 who')
    assert 'spl1 7 7 half0000000 who' not in _entries(inventory)


def test_an_entry_whose_children_fail_half_way_is_removed_and_a_left_one_of_this_run_replaced(
        inventory, conn, monkeypatch):
    """The rare paths of a claim, on a real vSphere API: an entry whose moid lists fail after the first is
    removed again (by the task waiter, like every lease task), and an entry of this run's name that an
    earlier release could not remove (vSphere refuses the new one with DuplicateName) is removed and
    written again, with this claim's guests."""
    from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import lease as lease_module
    vms = [inventory.new_vm() for _index in range(2)]
    with VmwareBackend(conn) as backend:
        guests = [backend.find_guest(GuestRef(name=vm.name)) for vm in vms]

        def half(moids):
            yield moid_lists(moids)[0]
            raise ProviderError('creating a lease folder failed: the server went away')
        monkeypatch.setattr(lease_module, 'moid_lists', half)
        with pytest.raises(ProviderError, match='went away'):
            backend.claim_leases(guests, 'spl1 7 7 half0000000 who')
        assert 'spl1 7 7 half0000000 who' not in _entries(inventory)
        monkeypatch.undo()
        # An entry of this run's name left behind, covering only the first VM.
        assert backend.claim_leases(guests[:1], 'spl1 8 8 left0000000 who') == {}
        backend._entries.clear()   # pylint: disable=protected-access  # as if its release had failed
        assert backend.claim_leases(guests, 'spl1 8 8 left0000000 who') == {}
        moids = sorted(vm._moId for vm in vms)  # pylint: disable=protected-access
        assert _entries(inventory) == {'spl1 8 8 left0000000 who': moid_lists(moids)}
        assert backend.release_leases(guests) == {}
    assert _entries(inventory) == {}

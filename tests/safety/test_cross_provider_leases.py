"""The leases of a set across providers are each provider's own, on the real services.

A task whose ``guests`` span libvirt and VMware must keep another run out of its VMware guests as
a VMware-only task does (the per-run entry in vSphere's lease registry, vmware/lease.py) and out
of its libvirt guests as a libvirt-only task does (the lease in the domain's metadata). Here
another run holds a live VMware entry on the set's VM: the set waits for it, then fails naming
that run with nothing written on either provider; once that run has let go, the set is taken, and
while it is held the other run sees this run's entry on the VM and its lease on the domain.
libvirt is its test driver (in-process), VMware is vcsim.
"""

from __future__ import annotations

import datetime
from typing import Dict, List

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._composite import composite_for
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._lease import Lease
from ansible_collections.savepoint.virt.plugins.module_utils._locking import GuestBusyError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec, to_iso, utcnow
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from contract import harness_vmware
from contract.harness import all_started, cleanup_all
from contract.harness_libvirt import LibvirtTestDriverHarness
from contract.harness_vmware import VcsimHarness

pytestmark = pytest.mark.vmware

#: how long the set waits for the other run's lease before it gives up (the test's own choice)
WAIT = 3.0


@pytest.fixture(scope='module')
def harnesses():
    with all_started({'libvirt': LibvirtTestDriverHarness(), 'vmware': VcsimHarness()}) as made:
        yield made


@pytest.fixture
def guests(harnesses):
    yield {name: harness.new_guest() for name, harness in harnesses.items()}
    cleanup_all(harnesses)


def connection(harnesses) -> Dict[str, object]:
    conn: Dict[str, object] = {'uri': LibvirtTestDriverHarness.uri}
    conn.update(harness_vmware.connection(harnesses['vmware'].server))
    return conn


def present(guests, name: str, timeout: float) -> Request:
    return Request(state='present', guests=[GuestRef(name=ref.name, provider=p) for p, ref in guests.items()],
                   snapshot_name=name, timeout=timeout,
                   spec=SnapshotSpec(name=name, marker=make_marker(None, 'contract-suite', '1d')))


def other_run(seconds: float) -> str:
    """The lease text of another run, live for ``seconds``, as a VMware entry stores it."""
    now = utcnow()
    return Lease(run='0therrun0000', who='ops@elsewhere pid 7 state=present', acquired_at=to_iso(now),
                 expires_at=to_iso(now + datetime.timedelta(seconds=seconds))).encode(80)


def names(harnesses, provider: str, ref: GuestRef) -> List[str]:
    return sorted(s.name for s in harnesses[provider].snapshots(ref))


def test_a_set_across_providers_waits_for_another_runs_vmware_lease_and_takes_each_providers_own(
        harnesses, guests):
    with VmwareBackend(harness_vmware.connection(harnesses['vmware'].server)) as other:
        vm = other.find_guest(guests['vmware'])
        assert other.claim_leases([vm], other_run(600)) == {}
        try:
            with composite_for([LibvirtBackend, VmwareBackend])(connection(harnesses)) as backend:
                engine = SnapshotEngine(backend, wait_policy=WaitPolicy(timeout=WAIT))
                with pytest.raises(GuestBusyError) as caught:
                    engine.run(present(guests, 'xlease', WAIT))
            assert "guest '%s' is in use by another run" % guests['vmware'].name in caught.value.msg
            assert 'ops@elsewhere pid 7' in caught.value.msg
            # nothing written on either provider, and no lease of the set left behind
            assert names(harnesses, 'libvirt', guests['libvirt']) == []
            assert names(harnesses, 'vmware', guests['vmware']) == []
            with LibvirtBackend({'uri': LibvirtTestDriverHarness.uri}) as libvirt_backend:
                assert libvirt_backend.read_lease(libvirt_backend.find_guest(guests['libvirt'])) is None
            assert other.other_leases([vm]) == {}
        finally:
            other.release_leases([vm])

        # The other run has let go: the set is taken, and while it is held each provider holds its lease.
        seen = {}
        with composite_for([LibvirtBackend, VmwareBackend])(connection(harnesses)) as backend:
            engine = SnapshotEngine(backend, wait_policy=WaitPolicy(timeout=60))
            real_act = engine._act   # pylint: disable=protected-access

            def act(request, plans):
                seen['vmware'] = other.other_leases([vm]).get(vm.id, [])
                with LibvirtBackend({'uri': LibvirtTestDriverHarness.uri}) as libvirt_backend:
                    seen['libvirt'] = libvirt_backend.read_lease(libvirt_backend.find_guest(guests['libvirt']))
                return real_act(request, plans)
            engine._act = act   # pylint: disable=protected-access
            made = engine.run(present(guests, 'xlease', 60))
        assert [(r['provider'], r['action']) for r in made['results']] == [
            ('libvirt', 'created'), ('vmware', 'created')]
        assert len(seen['vmware']) == 1 and Lease.decode(seen['vmware'][0]).run == Lease.decode(
            seen['libvirt']).run, seen
        assert other.other_leases([vm]) == {}   # released after the run

"""One snapshot set across libvirt, VMware and OpenStack, on the real services.

libvirt is its test driver (in-process, real libvirt-python), VMware is vcsim, OpenStack the
local stack; one CompositeBackend (_composite.py) takes one all-or-nothing set over a guest
of each, exactly as savepoint.virt.snapshot does for ``guests`` entries of three providers.
The forced failure is a create refused by one provider's backend (a subclass of the real
one that raises where the provider would), so the rollback on the two others is real.
"""

from __future__ import annotations

from typing import Dict, List, Type

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._composite import composite_for
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import PartialFailureError, ProviderError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from contract import harness_openstack, harness_vmware
from contract.harness import all_started, cleanup_all
from contract.harness_libvirt import LibvirtTestDriverHarness
from contract.harness_openstack import OpenStackHarness
from contract.harness_vmware import VcsimHarness

pytestmark = [pytest.mark.vmware, pytest.mark.openstack]

#: one request's deadline: the slowest provider's (OpenStack image upload) with room on a loaded machine
TIMEOUT = 180.0


@pytest.fixture(scope='module')
def harnesses():
    with all_started({'libvirt': LibvirtTestDriverHarness(), 'vmware': VcsimHarness(),
                      'openstack': OpenStackHarness()}) as made:
        yield made


@pytest.fixture
def guests(harnesses, monkeypatch):
    monkeypatch.setenv('VMWARE_VALIDATE_CERTS', 'false')   # see connection()
    yield {name: harness.new_guest() for name, harness in harnesses.items()}
    cleanup_all(harnesses)


def connection(harnesses) -> Dict[str, object]:
    """Every provider's connection options given once, as a task or module_defaults would.

    validate_certs is one option shared by VMware and OpenStack: left unset, each provider
    resolves its own (VMWARE_VALIDATE_CERTS for vcsim's self-signed certificate, the cloud's
    clouds.yaml entry for OpenStack) -- the documented way to verify one and not the other.
    """
    conn: Dict[str, object] = {'uri': LibvirtTestDriverHarness.uri}
    conn.update(harness_vmware.connection(harnesses['vmware'].server))
    conn.update(harness_openstack.connection())
    conn.pop('validate_certs')
    return conn


def refused(backend: Type) -> Type:
    """The real backend, but its provider refuses every create (as a full datastore would)."""
    def start_create(self, guest, spec):
        raise ProviderError('%s refused the snapshot of %s (forced failure)' % (self.provider, guest.name),
                            provider_message='forced by the test')
    return type('Refusing' + backend.__name__, (backend,), {'start_create': start_create})


def members(failing: str = '') -> List[Type]:
    classes = {'libvirt': LibvirtBackend, 'vmware': VmwareBackend, 'openstack': OpenStackBackend}
    return [refused(cls) if name == failing else cls for name, cls in classes.items()]


def refs(guests) -> List[GuestRef]:
    return [GuestRef(name=ref.name, provider=provider) for provider, ref in guests.items()]


def run(harnesses, request: Request, failing: str = '', check_mode: bool = False, diff: bool = False):
    with composite_for(members(failing))(connection(harnesses)) as backend:
        engine = SnapshotEngine(backend, check_mode=check_mode, diff=diff, wait_policy=WaitPolicy(timeout=TIMEOUT))
        return engine.run(request)


def present(guests, name: str) -> Request:
    return Request(state='present', guests=refs(guests), snapshot_name=name, timeout=TIMEOUT,
                   spec=SnapshotSpec(name=name, marker=make_marker(None, 'contract-suite', '1d')))


def names(harnesses, provider: str, ref: GuestRef) -> List[str]:
    return sorted(s.name for s in harnesses[provider].snapshots(ref))


def test_one_set_over_three_providers_created_reverted_listed_and_removed(harnesses, guests):
    checked = run(harnesses, present(guests, 'xprov'), check_mode=True, diff=True)
    assert [(r['provider'], r['action']) for r in checked['results']] == [
        ('libvirt', 'would create'), ('vmware', 'would create'), ('openstack', 'would create')]
    assert all(names(harnesses, p, ref) == [] for p, ref in guests.items())

    made = run(harnesses, present(guests, 'xprov'))
    assert made['provider'] == 'libvirt+openstack+vmware' and made['changed'] is True
    assert [(r['provider'], r['guest']['name'], r['action']) for r in made['results']] == [
        (p, ref.name, 'created') for p, ref in guests.items()]
    # every provider's operation was waited for to its end under the one deadline
    assert all(op['done'] for r in made['results'] for op in r['operations'])
    for provider, ref in guests.items():
        assert names(harnesses, provider, ref) == ['xprov'], provider
    again = run(harnesses, present(guests, 'xprov'))
    assert again['changed'] is False and {r['action'] for r in again['results']} == {'exists'}

    with composite_for(members())(connection(harnesses)) as backend:
        info = SnapshotEngine(backend).info(refs(guests))
    assert [(g['provider'], [s['name'] for s in g['snapshots']]) for g in info['guests']] == [
        (p, ['xprov']) for p in guests]

    reverted = run(harnesses, Request(state='reverted', guests=refs(guests), snapshot_name='xprov', timeout=TIMEOUT))
    assert [(r['provider'], r['action']) for r in reverted['results']] == [(p, 'reverted') for p in guests]

    gone = run(harnesses, Request(state='absent', guests=refs(guests), snapshot_name='xprov', timeout=TIMEOUT))
    assert [(r['provider'], r['action']) for r in gone['results']] == [(p, 'deleted') for p in guests]
    for provider, ref in guests.items():
        assert names(harnesses, provider, ref) == [], provider


@pytest.mark.parametrize('failing', ['vmware', 'openstack', 'libvirt'])
def test_a_create_refused_by_one_provider_rolls_the_set_back_on_the_other_two(harnesses, guests, failing):
    with pytest.raises(PartialFailureError) as caught:
        run(harnesses, present(guests, 'xprov-fail'), failing=failing)
    error = caught.value
    others = [p for p in guests if p != failing]
    assert "'%s' (%s): %s refused the snapshot" % (guests[failing].name, failing, failing) in error.msg
    assert 'snapshot set rolled back: xprov-fail removed from %s' % ', '.join(
        '%s (%s)' % (guests[p].name, p) for p in others) in error.msg
    by_provider = {r['provider']: r for r in error.details['results']}
    assert by_provider[failing]['action'] == 'failed' and by_provider[failing]['rollback'] == 'nothing to remove'
    for provider in others:
        assert by_provider[provider]['rollback'] == 'removed' and by_provider[provider]['rolled_back'] is True
        assert by_provider[provider]['changed'] is False
    # read from each provider itself: no guest keeps half a set
    for provider, ref in guests.items():
        assert names(harnesses, provider, ref) == [], provider

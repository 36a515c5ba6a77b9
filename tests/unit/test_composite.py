"""Routing of one snapshot set across providers (_composite.py) and how the module layer picks it.

Pure logic on hand-written in-memory member backends; the real three-provider set is in
tests/contract/test_cross_provider.py.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils import _module
from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._composite import CompositeBackend, composite_for
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import (
    InvalidRequestError, PartialFailureError, ProviderError,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from unit.memory_backend import MemoryBackend

#: every member instance made in a test, by provider (the composite makes them itself)
MADE: Dict[str, List['Member']] = {}
#: what the next member of a provider is made with
SETUP: Dict[str, Dict[str, Any]] = {}


class Member(MemoryBackend):
    guests_of: Dict[str, str] = {}

    def __init__(self, connection: Dict[str, Any]) -> None:
        setup = SETUP.get(self.provider, {})
        super().__init__(guests=dict(self.guests_of), polls=setup.get('polls', 0),
                         fail_create_on=setup.get('fail_create_on'))
        self.connection = dict(connection)
        self.connected = False
        self.closed = False
        self.wait_error: Optional[Exception] = setup.get('wait_error')
        self.leases: Dict[str, Optional[str]] = {}
        self.lease_writes: List[str] = []
        MADE.setdefault(self.provider, []).append(self)

    def connect(self) -> None:
        self.connected = True

    def close(self) -> None:
        self.closed = True

    def wait(self, operations, policy, progress=None, until_first=False) -> None:
        if self.wait_error is not None:
            raise self.wait_error
        super().wait(operations, policy, progress, until_first)


class Alpha(Member):
    provider = 'alpha'
    supports_leases = True
    lease_settle_seconds = 0.0
    connection_options = {'alpha_uri': {'type': 'str'}}
    guests_of = {'a1': 'running', 'a2': 'running'}

    def read_lease(self, guest):
        return self.leases.get(guest.id)

    def write_lease(self, guest, text):
        self.lease_writes.append(guest.name)
        self.leases[guest.id] = text


class Beta(Member):
    provider = 'beta'
    connection_options = {'beta_host': {'type': 'str'}}
    spec_options = {'beta_only': {'type': 'bool', 'default': False}}
    guests_of = {'b1': 'running'}


class Gamma(Member):
    provider = 'gamma'
    connection_options = {'gamma_cloud': {'type': 'str'}}
    guests_of = {'g1': 'running'}


@pytest.fixture(autouse=True)
def _fresh():
    MADE.clear()
    SETUP.clear()
    yield
    MADE.clear()
    SETUP.clear()


def policy() -> WaitPolicy:
    return WaitPolicy(timeout=30.0, initial_delay=0.0, max_delay=0.0, sleep=lambda _s: None)


def refs(*pairs) -> List[GuestRef]:
    return [GuestRef(name=name, provider=provider) for provider, name in pairs]


def present(name: str, guests: List[GuestRef]) -> Request:
    return Request(state='present', guests=guests, snapshot_name=name,
                   spec=SnapshotSpec(name=name, marker=make_marker(None, 'unit', None)))


def run(cls, request: Request, check_mode: bool = False, diff: bool = False, **connection):
    with cls(connection) as backend:
        return SnapshotEngine(backend, check_mode=check_mode, diff=diff, wait_policy=policy()).run(request)


def names(provider: str, guest: str) -> List[str]:
    return [s.name for s in MADE[provider][-1].snapshots[guest]]


def test_one_set_across_providers_routes_every_guest_to_its_own_backend():
    cls = composite_for([Beta, Alpha])
    assert cls.provider == 'alpha+beta' and issubclass(cls, CompositeBackend)
    result = run(cls, present('pre', refs(('alpha', 'a1'), ('beta', 'b1'), ('alpha', 'a2'))),
                 alpha_uri='a://x', beta_host='b.example')
    assert result['provider'] == 'alpha+beta' and result['changed'] is True
    assert [(r['guest']['name'], r['provider'], r['action']) for r in result['results']] == [
        ('a1', 'alpha', 'created'), ('b1', 'beta', 'created'), ('a2', 'alpha', 'created')]
    alpha, beta = MADE['alpha'][0], MADE['beta'][0]
    assert [w[1] for w in alpha.writes] == ['a1', 'a2'] and [w[1] for w in beta.writes] == ['b1']
    # each member got only its own connection options, and was closed at the end
    assert alpha.connection == {'alpha_uri': 'a://x'} and beta.connection == {'beta_host': 'b.example'}
    assert alpha.closed and beta.closed
    # leases: stored by the member that has storage, held in memory for the other
    assert set(alpha.lease_writes) == {'a1', 'a2'} and alpha.leases == {'id-a1': None, 'id-a2': None}


def test_a_failed_create_on_one_provider_removes_the_set_from_the_others():
    SETUP['beta'] = {'fail_create_on': {'b1'}}
    cls = composite_for([Alpha, Beta])
    with pytest.raises(PartialFailureError) as caught:
        run(cls, present('pre', refs(('alpha', 'a1'), ('beta', 'b1'), ('alpha', 'a2'))))
    error = caught.value
    assert "'b1' (beta): disk full on b1" in error.msg
    assert 'rolled back: pre removed from a1 (alpha), a2 (alpha)' in error.msg
    by_guest = {r['guest']['name']: r for r in error.details['results']}
    assert by_guest['a1']['provider'] == 'alpha' and by_guest['a1']['rollback'] == 'removed'
    assert by_guest['a1']['changed'] is False and by_guest['b1']['action'] == 'failed'
    assert by_guest['b1']['provider'] == 'beta' and by_guest['b1']['rollback'] == 'nothing to remove'
    assert names('alpha', 'a1') == [] and names('alpha', 'a2') == [] and names('beta', 'b1') == []


def test_only_the_providers_a_request_names_are_connected():
    cls = composite_for([Alpha, Beta, Gamma])
    run(cls, present('pre', refs(('alpha', 'a1'), ('beta', 'b1'))))
    assert 'gamma' not in MADE and MADE['alpha'][0].connected and MADE['beta'][0].connected


def test_every_providers_operations_are_waited_for_to_their_end():
    SETUP['alpha'] = {'polls': 3}
    SETUP['beta'] = {'polls': 2}
    result = run(composite_for([Alpha, Beta]), present('pre', refs(('alpha', 'a1'), ('beta', 'b1'), ('alpha', 'a2'))))
    assert [r['action'] for r in result['results']] == ['created'] * 3
    assert all(op['done'] for r in result['results'] for op in r['operations'])
    assert names('alpha', 'a1') == names('alpha', 'a2') == names('beta', 'b1') == ['pre']


def test_wait_groups_per_provider_and_one_failing_waiter_leaves_the_others_waited_for():
    SETUP['alpha'] = {'polls': 3, 'wait_error': ProviderError('alpha went away')}
    SETUP['beta'] = {'polls': 3}
    cls = composite_for([Alpha, Beta])
    with pytest.raises(PartialFailureError) as caught:
        run(cls, present('pre', refs(('alpha', 'a1'), ('beta', 'b1'))))
    by_guest = {r['guest']['name']: r for r in caught.value.details['results']}
    # beta's create was waited for to its end (then rolled back with the set), alpha's failed
    assert by_guest['a1']['action'] == 'failed' and 'alpha went away' in by_guest['a1']['msg']
    assert by_guest['b1']['rollback'] == 'removed'
    assert names('beta', 'b1') == []


def test_check_mode_revert_and_absent_across_providers():
    cls = composite_for([Alpha, Beta])
    guests = refs(('alpha', 'a1'), ('beta', 'b1'))
    with cls({}) as backend:
        engine = SnapshotEngine(backend, wait_policy=policy())
        engine.run(present('pre', guests))
        checked = SnapshotEngine(backend, check_mode=True, diff=True, wait_policy=policy()).run(
            present('other', guests))
        assert [r['action'] for r in checked['results']] == ['would create', 'would create']
        assert '# guest a1' in checked['diff']['after'] and 'other' in checked['diff']['after']
        assert [w[0] for m in (MADE['alpha'][0], MADE['beta'][0]) for w in m.writes] == ['create', 'create']
        reverted = engine.run(Request(state='reverted', guests=guests, snapshot_name='pre'))
        assert [(r['provider'], r['action']) for r in reverted['results']] == [
            ('alpha', 'reverted'), ('beta', 'reverted')]
        gone = engine.run(Request(state='absent', guests=guests, snapshot_name='pre'))
        assert [r['action'] for r in gone['results']] == ['deleted', 'deleted']
        info = engine.info(guests)
        assert [(g['guest']['name'], g['provider']) for g in info['guests']] == [('a1', 'alpha'), ('b1', 'beta')]
    assert names('alpha', 'a1') == [] and names('beta', 'b1') == []


def test_create_options_reach_only_the_provider_that_has_them():
    cls = composite_for([Alpha, Beta])
    seen = {}

    def spy(self, guest, spec, warnings):
        seen[self.provider] = dict(spec.options)
        return spec
    Alpha.prepare_spec = spy
    Beta.prepare_spec = spy
    try:
        request = present('pre', refs(('alpha', 'a1'), ('beta', 'b1')))
        request.spec.options = {'beta_only': True}
        run(cls, request)
    finally:
        del Alpha.prepare_spec, Beta.prepare_spec
    assert seen == {'alpha': {}, 'beta': {'beta_only': True}}


def test_a_guest_ref_without_provider_is_refused_by_the_composite():
    cls = composite_for([Alpha, Beta])
    with pytest.raises(InvalidRequestError, match='needs a provider in every guests entry'):
        run(cls, present('pre', [GuestRef(name='a1')]))


# -- the module layer: how provider options and entries combine ------------------------------

def params(**given):
    spec = _module.snapshot_argument_spec(BACKENDS, with_provider=True)
    values = {name: entry.get('default') for name, entry in spec.items()}
    values.update(given)
    return values


MIXED = [{'provider': 'libvirt', 'name': 'web'}, {'provider': 'vmware', 'moid': 'vm-42'},
         {'provider': 'openstack', 'server_id': 'abc'}]


def test_entries_of_several_providers_make_a_composite_with_per_entry_keys():
    cls = _module.choose_backend(params(guests=MIXED), BACKENDS)
    assert cls.provider == 'libvirt+openstack+vmware'
    assert {m.provider for m in cls.members} == {'libvirt', 'openstack', 'vmware'}
    assert _module.guest_refs(params(guests=MIXED), cls) == [
        GuestRef(name='web', provider='libvirt'), GuestRef(id='vm-42', provider='vmware'),
        GuestRef(id='abc', provider='openstack')]
    assert set(cls.connection_options) == set(LibvirtBackend.connection_options) | set(
        VmwareBackend.connection_options) | set(OpenStackBackend.connection_options)


def test_a_set_of_one_provider_named_in_its_entries_uses_that_backend_itself():
    entries = [{'provider': 'vmware', 'name': 'a'}, {'provider': 'vmware', 'moid': 'vm-1'}]
    assert _module.choose_backend(params(guests=entries), BACKENDS) is VmwareBackend
    assert _module.choose_backend(params(provider='vmware', guests=entries), BACKENDS) is VmwareBackend
    assert _module.guest_refs(params(guests=entries), VmwareBackend) == [GuestRef(name='a'), GuestRef(id='vm-1')]
    # entries without a provider take the task's
    assert _module.choose_backend(params(provider='libvirt', guests=['a', {'name': 'b'}]), BACKENDS) is LibvirtBackend


@pytest.mark.parametrize('given, message', [
    ({'guests': [{'provider': 'proxmox', 'name': 'a'}]}, "provider 'proxmox' does not exist; use one of libvirt"),
    ({'provider': 'libvirt', 'guests': [{'name': 'a'}, {'provider': 'vmware', 'name': 'b'}]},
     "provider 'vmware' differs from the task's provider option 'libvirt'"),
    ({'guests': [{'provider': 'libvirt', 'name': 'a'}, 'b']}, "provider is required: .* \\('b' has none\\)"),
    ({'name': 'web'}, 'provider is required'),
    ({'guests': [{'provider': '', 'name': 'a'}]}, 'provider must be a non-empty string'),
])
def test_bad_provider_combinations_are_refused_naming_the_option(given, message):
    with pytest.raises(InvalidRequestError, match=message):
        _module.choose_backend(params(**given), BACKENDS)


def test_an_entry_may_use_only_its_own_providers_keys():
    entries = [{'provider': 'libvirt', 'moid': 'vm-1'}, {'provider': 'vmware', 'name': 'b'}]
    cls = _module.choose_backend(params(guests=entries), BACKENDS)
    with pytest.raises(InvalidRequestError, match="'moid' not used by provider libvirt"):
        _module.guest_refs(params(guests=entries), cls)


def test_a_provider_module_takes_entries_of_its_own_provider_only():
    ok = [{'provider': 'libvirt', 'name': 'a'}]
    assert _module.choose_backend(params(guests=ok), (LibvirtBackend,), neutral=False) is LibvirtBackend
    with pytest.raises(InvalidRequestError, match='this module manages libvirt guests only'):
        _module.choose_backend(params(guests=[{'provider': 'vmware', 'name': 'a'}]), (LibvirtBackend,),
                               neutral=False)


def test_a_create_option_of_a_provider_outside_the_set_is_refused():
    cls = _module.choose_backend(params(guests=MIXED[:2]), BACKENDS)
    with pytest.raises(InvalidRequestError, match="'include_volumes' is only used by provider openstack"):
        _module.refuse_foreign_spec_options(params(guests=MIXED[:2], include_volumes=True), cls, BACKENDS)
    _module.refuse_foreign_spec_options(params(guests=MIXED, include_volumes=True),
                                        _module.choose_backend(params(guests=MIXED), BACKENDS), BACKENDS)


def test_a_task_across_providers_defaults_to_the_most_careful_providers_parallel():
    from ansible_collections.savepoint.virt.plugins.module_utils._options import PARALLEL_DEFAULTS, parallel_default
    cls = _module.choose_backend(params(guests=MIXED), BACKENDS)
    assert parallel_default(cls.provider) == min(PARALLEL_DEFAULTS[p] for p in ('libvirt', 'openstack', 'vmware'))
    assert parallel_default('vmware') == PARALLEL_DEFAULTS['vmware']


class Entries(Beta):
    """A member whose leases are one entry per run for all its guests (as VMware's are), recording its calls."""
    provider = 'entries'
    supports_leases = True
    lease_entries = True
    lease_max_chars = 80
    guests_of = {'e1': 'running'}
    #: what the next claim finds of other runs: guest id -> entry names
    others: Dict[str, List[str]] = {}

    def __init__(self, connection):
        super().__init__(connection)
        self.calls: List[tuple] = []

    def claim_leases(self, guests, text):
        self.calls.append(('claim', sorted(g.name for g in guests), text))
        return dict(self.others)

    def release_leases(self, guests):
        self.calls.append(('release', sorted(g.name for g in guests)))
        return {}

    def read_lease(self, guest):
        raise AssertionError('an entries member is never asked for a per-guest lease')

    write_lease = read_lease


def test_each_member_leases_its_own_guests_with_its_own_protocol_under_one_run():
    """libvirt/OpenStack-like (alpha: per-guest write and read back) and VMware-like (one entry per run) in one
    set: each member is asked for exactly its guests' leases, with the same run in both, all released."""
    Entries.others = {}
    cls = composite_for([Entries, Alpha])
    result = run(cls, present('pre', refs(('alpha', 'a1'), ('entries', 'e1'), ('alpha', 'a2'))))
    assert [r['action'] for r in result['results']] == ['created', 'created', 'created']
    entries, alpha = MADE['entries'][0], MADE['alpha'][0]
    assert [c[:2] for c in entries.calls] == [('claim', ['e1']), ('release', ['e1'])]
    assert set(alpha.lease_writes) == {'a1', 'a2'} and alpha.leases == {'id-a1': None, 'id-a2': None}
    with cls({}) as backend:
        assert backend.supports_leases is False   # the composite stores none itself
        assert [(m.provider, [g.name for g in part]) for m, part in backend.lease_parts(
            backend.find_guests(refs(('entries', 'e1'), ('alpha', 'a2'))))] == [('alpha', ['a2']), ('entries', ['e1'])]


def test_the_leases_of_a_set_are_all_or_none_and_one_wait_for_all_members():
    """alpha's guest is held by another run for 20 s, entries' all along: the set waits its 30 s once (not
    30 s per member), then fails naming the run on the entries member, with alpha's lease released."""
    from ansible_collections.savepoint.virt.plugins.module_utils._lease import Lease
    from ansible_collections.savepoint.virt.plugins.module_utils._locking import GuestBusyError, LeaseKeepers
    from ansible_collections.savepoint.virt.plugins.module_utils._model import to_iso, utcnow
    import datetime
    clock = {'t': 0.0}
    live = Lease(run='0therrun0000', who='ops@elsewhere pid 7', acquired_at=to_iso(utcnow()),
                 expires_at=to_iso(utcnow() + datetime.timedelta(hours=1))).encode(80)
    Entries.others = {'id-e1': [live]}

    class Held(Alpha):
        def read_lease(self, guest):
            if guest.id == 'id-a1' and clock['t'] < 20.0 and self.leases.get(guest.id) is None:
                return live
            return super().read_lease(guest)

    def sleep(seconds):
        clock['t'] += seconds
    with composite_for([Entries, Held])({}) as backend:
        guests = backend.find_guests(refs(('alpha', 'a1'), ('entries', 'e1')))
        keepers = LeaseKeepers(backend, 30.0, clock=lambda: clock['t'], sleep=sleep)
        with pytest.raises(GuestBusyError) as caught:
            keepers.acquire(guests)
    assert "guest 'e1' is in use by another run" in caught.value.msg and 'ops@elsewhere pid 7' in caught.value.msg
    assert 20.0 <= clock['t'] <= 30.0 + 5.0   # one wait: at most the timeout and one last poll, not 2 x 30 s
    alpha = MADE['alpha'][0]
    assert alpha.lease_writes == ['a1', 'a1'] and alpha.leases == {'id-a1': None}   # taken, then released
    assert MADE['entries'][0].calls[-1] == ('release', ['e1']) and keepers.keepers == []


def test_a_lost_renewal_on_one_member_is_raised_after_the_others_are_renewed():
    from ansible_collections.savepoint.virt.plugins.module_utils._locking import LeaseKeepers
    renewed = []

    class Renewing(Entries):
        def renew_leases(self, guests, text):
            renewed.append(self.provider)
            return {}

    class AlphaRenewing(Alpha):   # first in provider order, and its renewal finds its lease gone
        def renew_leases(self, guests, text):
            renewed.append(self.provider)
            return {g.id: ProviderError('the lease of this run is gone') for g in guests}
    Entries.others = {}
    clock = {'t': 0.0}
    with composite_for([Renewing, AlphaRenewing])({}) as backend:
        keepers = LeaseKeepers(backend, 30.0, clock=lambda: clock['t'], sleep=lambda s: None)
        keepers.acquire(backend.find_guests(refs(('entries', 'e1'), ('alpha', 'a1'))))
        clock['t'] += 60.0
        with pytest.raises(ProviderError, match='lease of this run is gone'):
            keepers.renew()
        keepers.release()
    assert renewed == ['alpha', 'entries']

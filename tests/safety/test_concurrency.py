"""Two ansible-playbook runs acting on the same guests at once (issue 9, Concurrency), on real
libvirt guests and on servers of the shared OpenStack stack.

Each case starts two runs side by side; whatever the interleaving, one waits for the other (or
fails naming it), the snapshot tree is a consistent tree with no two snapshots of one name, and a
set never half-applies. A run SIGKILLed while it holds a guest's lease is taken over after the
lease expires, with a warning. One table of cases (CASES), one runner; a provider is a Side
(how to make guests, call the module, read the tree and the lease).

OpenStack cases talk to the shared stack: run them under its lock,
``flock /tmp/savepoint-openstack.lock .venv/bin/python -m pytest -q -m openstack tests/safety/test_concurrency.py``;
libvirt ones under ``flock -s /tmp/savepoint-libvirtd.lock``.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._locking import LEASE_MARGIN_SECONDS

from safety.runs import Run

TINY_GUEST_PREFIX = 'sp-safety'
TIMEOUT = 120


class LibvirtSide:
    provider = 'libvirt'

    def __init__(self, request):
        import libvirt
        from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LEASE_NAMESPACE
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # lease_of polls: no stderr noise
        self.libvirt, self.namespace = libvirt, LEASE_NAMESPACE
        self.guests = request.getfixturevalue('tiny_guests')

    def new_guest(self):
        return self.guests()

    def connection(self):
        return {'provider': 'libvirt', 'uri': 'qemu:///system'}

    def tree(self, guest):
        snaps = guest.dom.listAllSnapshots(0)
        parents = {}
        for snap in snaps:
            try:
                parents[snap.getName()] = snap.getParent(0).getName()
            except self.libvirt.libvirtError:
                parents[snap.getName()] = None
        return [s.getName() for s in snaps], parents

    def lease_of(self, guest):
        try:
            xml = guest.dom.metadata(self.libvirt.VIR_DOMAIN_METADATA_ELEMENT, self.namespace,
                                     self.libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        except self.libvirt.libvirtError:
            return None
        return ET.fromstring(xml).text

    def cleanup(self):
        pass  # tiny_guests removes its guests


class OpenStackSide:
    """Servers of the shared stack (cloud stack-demo, a plain project member), deleted afterwards."""
    provider = 'openstack'

    def __init__(self, request):
        from contract.harness_openstack import StackServers, shared_stack
        from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack.lease import M_LEASE
        self.key = M_LEASE
        self.servers = StackServers(shared_stack())
        self.sdk = self.servers.conn

    def new_guest(self):
        return self.servers.boot()

    def connection(self):
        return {'provider': 'openstack', 'cloud': 'stack-demo'}

    def tree(self, server):
        images = [i for i in self.sdk.image.images(owner=self.sdk.current_project_id)
                  if i.instance_uuid == server.id and i.status not in ('killed', 'deleted', 'pending_delete')]
        by_id = {i.id: i.name for i in images}
        parents = {i.name: by_id.get(i.properties.get('savepoint_parent_id')) for i in images}
        return [i.name for i in images], parents

    def lease_of(self, server):
        return (self.sdk.compute.get_server(server.id).metadata or {}).get(self.key)

    def cleanup(self):
        try:
            self.servers.cleanup()
        finally:
            self.sdk.close()


SIDES = [pytest.param(LibvirtSide, id='libvirt', marks=pytest.mark.qemu),
         pytest.param(OpenStackSide, id='openstack', marks=pytest.mark.openstack)]


@pytest.fixture(params=SIDES)
def side(request):
    made = request.param(request)
    yield made
    made.cleanup()


def call(side, guests, snapshot, state='present', timeout=TIMEOUT, **extra):
    args = dict(side.connection(), snapshot_name=snapshot, state=state, timeout=timeout)
    if len(guests) == 1:
        args['name'] = guests[0].name
    else:
        args['guests'] = [g.name for g in guests]
    args.update(extra)
    return args


def tree(side, guest):
    """{name: parent} of the guest's snapshots, checked to be one consistent tree of unique names."""
    names, parents = side.tree(guest)
    assert len(names) == len(set(names)), 'two snapshots of one name: %s' % names
    for name, parent in parents.items():
        assert parent is None or parent in parents, '%s has a missing parent %s' % (name, parent)
    return parents


def both(first, second, timeout=TIMEOUT * 3):
    a, b = Run(first), Run(second)
    return a.wait(timeout), b.wait(timeout)


def ok_or_busy(run):
    """A run either succeeded or failed clearly naming the other run (guest_busy)."""
    result = run.result()
    if run.rc == 0:
        return result
    assert result.get('error') == 'guest_busy', result.get('msg')
    assert 'in use by another run' in result['msg'] and 'pid' in result['msg']
    return result


CASES = ['same_name_twice', 'two_names', 'create_and_revert', 'create_and_delete', 'crossed_sets']


@pytest.mark.parametrize('case', CASES)
def test_two_runs_at_once(side, case):
    g1, g2 = side.new_guest(), side.new_guest()
    if case == 'same_name_twice':
        a, b = both(call(side, [g1], 'same'), call(side, [g1], 'same'))
        results = [ok_or_busy(a), ok_or_busy(b)]
        assert sorted(r['results'][0]['action'] for r in results if r.get('results')) in (
            ['created', 'exists'], ['created'])
        assert list(tree(side, g1)) == ['same']
    elif case == 'two_names':
        a, b = both(call(side, [g1], 'first'), call(side, [g1], 'second'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        parents = tree(side, g1)
        assert sorted(parents) == ['first', 'second']
        # serialised: one is the child of the other, never two roots racing for "current"
        assert sorted(parents.values(), key=str) in ([None, 'first'], [None, 'second'])
    elif case == 'create_and_revert':
        assert Run(call(side, [g1], 'base')).wait(TIMEOUT * 2).rc == 0
        a, b = both(call(side, [g1], 'base', state='reverted'), call(side, [g1], 'next'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        assert sorted(tree(side, g1)) == ['base', 'next']
    elif case == 'create_and_delete':
        assert Run(call(side, [g1], 'old')).wait(TIMEOUT * 2).rc == 0
        a, b = both(call(side, [g1], 'old', state='absent'), call(side, [g1], 'new'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        assert sorted(tree(side, g1)) == ['new']
    elif case == 'crossed_sets':
        # Two sets over the same two guests named in opposite order: no deadlock, no half set.
        a, b = both(call(side, [g1, g2], 'set-a'), call(side, [g2, g1], 'set-b'))
        for run, name in ((a, 'set-a'), (b, 'set-b')):
            ok_or_busy(run)
            present = [name in tree(side, g) for g in (g1, g2)]
            assert present in ([True, True], [False, False]), '%s half applied: %s' % (name, present)
        assert a.rc == 0 or b.rc == 0
    for guest in (g1, g2):
        assert side.lease_of(guest) is None, 'a lease was left behind on %s' % guest.name


def test_run_killed_holding_the_lease_is_taken_over_after_expiry(side):
    guest = side.new_guest()
    short = 5
    victim = Run(call(side, [guest], 'victim', timeout=short))
    deadline = time.monotonic() + TIMEOUT
    while side.lease_of(guest) is None and victim.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()
    time.sleep(3)  # had any part of the run survived the kill, it would release the lease now
    held = side.lease_of(guest)
    assert held is not None, 'the run finished before it could be killed holding the lease'
    dead = json.loads(held)
    started = time.monotonic()
    heir = Run(call(side, [guest], 'heir', timeout=TIMEOUT)).wait(short + LEASE_MARGIN_SECONDS + TIMEOUT * 2)
    result = heir.result()
    assert heir.rc == 0, result.get('msg')
    waited = time.monotonic() - started
    assert any('stale lease' in w and dead['run'] in w for w in result.get('warnings', [])), result.get('warnings')
    # It waited for the expiry (timeout + margin after the victim took it), not less.
    assert waited >= LEASE_MARGIN_SECONDS - 5
    assert 'heir' in tree(side, guest) and 'victim' not in tree(side, guest)
    assert side.lease_of(guest) is None

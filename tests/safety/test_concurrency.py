"""Two ansible-playbook runs acting on the same guests at once (issue 9, Concurrency): real libvirt
guests, vcsim VMs and servers of the shared OpenStack stack, one table of cases (CASES) run on every
provider (PROVIDERS).

Each case starts two runs side by side; whatever the interleaving, one waits for the other (or
fails naming it), the snapshot tree is a consistent tree, and a set never half-applies. A run
SIGKILLed while it holds a guest's lease is taken over after the lease expires, with a warning.

OpenStack cases talk to the shared stack: by hand, run them under its lock,
``flock /tmp/savepoint-openstack.lock .venv/bin/python -m pytest -q -m openstack tests/safety/test_concurrency.py``;
libvirt ones under ``flock -s /tmp/savepoint-libvirtd.lock``.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LEASE_NAMESPACE
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware.lease import REGISTRY_FOLDER
from ansible_collections.savepoint.virt.plugins.module_utils._locking import LEASE_MARGIN_SECONDS, Lease

from safety.runs import Run

TINY_GUEST_PREFIX = 'sp-safety'

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # lease_of polls: no stderr noise
TIMEOUT = 120


def call(guest_names, snapshot, state='present', timeout=TIMEOUT, **extra):
    args = {'provider': 'libvirt', 'uri': 'qemu:///system', 'snapshot_name': snapshot, 'state': state,
            'timeout': timeout}
    if len(guest_names) == 1:
        args['name'] = guest_names[0]
    else:
        args['guests'] = list(guest_names)
    args.update(extra)
    return args


def checked_tree(names, parents):
    """{name: parent} checked to be one consistent tree with unique names."""
    assert len(names) == len(set(names)), 'duplicate snapshot names: %s' % names
    for name, parent in parents.items():
        assert parent is None or parent in parents, '%s has a missing parent %s' % (name, parent)
    return parents


class LibvirtTarget:
    """Real libvirt guests (tiny no-OS QEMU guests); the lease is an element of the domain's <metadata>."""

    #: a killed run's savevm dies with it (vcsim, in contrast, runs a request it has received)
    kills_before_the_call = True

    def __init__(self, tiny_guests):
        self.tiny_guests = tiny_guests
        self.guests = {}

    def new_guest(self):
        guest = self.tiny_guests()
        self.guests[guest.name] = guest
        return guest.name

    def call(self, guest_names, snapshot, **extra):
        return call(guest_names, snapshot, **extra)

    def tree(self, name):
        snaps = self.guests[name].dom.listAllSnapshots(0)
        parents = {}
        for snap in snaps:
            try:
                parents[snap.getName()] = snap.getParent(0).getName()
            except libvirt.libvirtError:
                parents[snap.getName()] = None
        return checked_tree([s.getName() for s in snaps], parents)

    def lease_of(self, name):
        return lease_of(self.guests[name])

    def close(self):
        pass


class VcsimTarget:
    """VMs of a vcsim; the lease is the entry of the run in the registry folder 'savepoint.virt leases' of
    the datacenter's VM folder: a folder named with the lease text whose children name the VMs' moids."""

    kills_before_the_call = False

    def __init__(self, server):
        from contract.harness_vmware import VcsimInventory
        self.server = server
        self.inventory = VcsimInventory(server)
        self.vms = {}

    def new_guest(self):
        vm = self.inventory.new_vm(name='sp-conc-%s' % uuid.uuid4().hex[:8])
        self.vms[vm.name] = vm
        return vm.name

    def call(self, guest_names, snapshot, **extra):
        args = call(guest_names, snapshot, **extra)
        args.update(provider='vmware', hostname=self.server.host, port=self.server.port, username='user',
                    password='pass', validate_certs=False, honor_capability_flags=False)
        del args['uri']
        return args

    def tree(self, name):
        names, parents = [], {}

        def walk(nodes, parent):
            for node in nodes or []:
                names.append(node.name)
                parents[node.name] = parent
                walk(node.childSnapshotList, node.name)
        info = self.vms[name].snapshot
        walk(info.rootSnapshotList if info else [], None)
        return checked_tree(names, parents)

    def lease_of(self, name):
        registry = self.inventory.content.searchIndex.FindChild(self.inventory.dc.vmFolder, REGISTRY_FOLDER)
        moid = self.vms[name]._moId  # pylint: disable=protected-access
        for entry in (registry.childEntity if registry is not None else []):
            if any(moid in child.name.split() for child in entry.childEntity):
                return entry.name
        return None

    def close(self):
        self.inventory.destroy_made()
        self.inventory.close()


class OpenStackTarget:
    """Servers of the shared stack (cloud stack-demo, a plain project member), deleted afterwards; the lease is
    the server metadata key savepoint_lease."""

    #: a killed run may already have asked Glance for the image: the heir's tree is not checked for it
    kills_before_the_call = False

    def __init__(self):
        from contract.harness_openstack import StackServers, shared_stack
        from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack.lease import M_LEASE
        self.key = M_LEASE
        self.servers = StackServers(shared_stack())
        self.sdk = self.servers.conn
        self.made = {}

    def new_guest(self):
        server = self.servers.boot()
        self.made[server.name] = server
        return server.name

    def call(self, guest_names, snapshot, **extra):
        args = call(guest_names, snapshot, **extra)
        del args['uri']
        args.update(provider='openstack', cloud='stack-demo')
        return args

    def tree(self, name):
        server = self.made[name]
        images = [i for i in self.sdk.image.images(owner=self.sdk.current_project_id)
                  if i.instance_uuid == server.id and i.status not in ('killed', 'deleted', 'pending_delete')]
        by_id = {i.id: i.name for i in images}
        parents = {i.name: by_id.get(i.properties.get('savepoint_parent_id')) for i in images}
        return checked_tree([i.name for i in images], parents)

    def lease_of(self, name):
        return (self.sdk.compute.get_server(self.made[name].id).metadata or {}).get(self.key)

    def close(self):
        try:
            self.servers.cleanup()
        finally:
            self.sdk.close()


@pytest.fixture(scope='module')
def slow_vcsim():
    """This module's own vcsim, whose snapshot methods wait before they run (outside vcsim's lock on the VM),
    so that two runs really overlap: without a lease both would read the tree, both would create."""
    from services.vcsim import VcsimServer
    server = VcsimServer(vms_per_pool=1, extra_args=['-method-delay', ','.join(
        '%s:%d' % item for item in SLOW_METHODS.items())])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def target(request):
    if request.param == 'libvirt':
        made = LibvirtTarget(request.getfixturevalue('tiny_guests'))
    elif request.param == 'openstack':
        made = OpenStackTarget()
    else:
        made = VcsimTarget(request.getfixturevalue('slow_vcsim'))
    try:
        yield made
    finally:
        made.close()


def lease_of(guest):
    try:
        return guest.dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, LEASE_NAMESPACE,
                                  libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    except libvirt.libvirtError:
        return None


def both(first, second, timeout=TIMEOUT * 3):
    a, b = Run(first), Run(second)
    return a.wait(timeout), b.wait(timeout)


def ok_or_busy(run, other_hint=''):
    """A run either succeeded or failed clearly naming the other run (guest_busy)."""
    result = run.result()
    if run.rc == 0:
        return result
    assert result.get('error') == 'guest_busy', result.get('msg')
    assert 'in use by another run' in result['msg'] and 'pid' in result['msg']
    return result


CASES = ['same_name_twice', 'two_names', 'create_and_revert', 'create_and_delete', 'crossed_sets']
PROVIDERS = [pytest.param('libvirt', marks=pytest.mark.qemu), pytest.param('vmware', marks=pytest.mark.vmware),
             pytest.param('openstack', marks=pytest.mark.openstack)]
#: milliseconds vcsim sleeps before it runs each snapshot method (the window two runs could race in)
SLOW_METHODS = {'CreateSnapshot_Task': 2000, 'RevertToSnapshot_Task': 1000, 'RemoveSnapshot_Task': 1000}


@pytest.mark.parametrize('target', PROVIDERS, indirect=True)
@pytest.mark.parametrize('case', CASES)
def test_two_runs_at_once(target, case):
    g1, g2 = target.new_guest(), target.new_guest()
    on = target.call
    if case == 'same_name_twice':
        a, b = both(on([g1], 'same'), on([g1], 'same'))
        results = [ok_or_busy(a), ok_or_busy(b)]
        assert sorted(r['results'][0]['action'] for r in results if r.get('results')) in (
            ['created', 'exists'], ['created'])
        assert list(target.tree(g1)) == ['same']
    elif case == 'two_names':
        a, b = both(on([g1], 'first'), on([g1], 'second'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        parents = target.tree(g1)
        assert sorted(parents) == ['first', 'second']
        # serialised: one is the child of the other, never two roots racing for "current"
        assert sorted(parents.values(), key=str) in ([None, 'first'], [None, 'second'])
    elif case == 'create_and_revert':
        assert Run(on([g1], 'base')).wait(TIMEOUT * 2).rc == 0
        a, b = both(on([g1], 'base', state='reverted'), on([g1], 'next'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        assert sorted(target.tree(g1)) == ['base', 'next']
    elif case == 'create_and_delete':
        assert Run(on([g1], 'old')).wait(TIMEOUT * 2).rc == 0
        a, b = both(on([g1], 'old', state='absent'), on([g1], 'new'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        assert sorted(target.tree(g1)) == ['new']
    elif case == 'crossed_sets':
        # Two sets over the same two guests named in opposite order: no deadlock, no half set.
        a, b = both(on([g1, g2], 'set-a'), on([g2, g1], 'set-b'))
        for run, name in ((a, 'set-a'), (b, 'set-b')):
            ok_or_busy(run)
            present = [name in target.tree(g) for g in (g1, g2)]
            assert present in ([True, True], [False, False]), '%s half applied: %s' % (name, present)
        assert a.rc == 0 or b.rc == 0
    for guest in (g1, g2):
        assert target.lease_of(guest) is None, 'a lease was left behind on %s' % guest


def dead_run_of(raw):
    """The run id in a lease as the provider stores it (libvirt: JSON in an XML element; VMware: compact;
    OpenStack: JSON)."""
    if raw.startswith('<'):
        raw = ET.fromstring(raw).text
    return Lease.decode(raw).run


@pytest.mark.parametrize('target', PROVIDERS, indirect=True)
def test_run_killed_holding_the_lease_is_taken_over_after_expiry(target):
    guest = target.new_guest()
    short = 5
    victim = Run(target.call([guest], 'victim', timeout=short))
    deadline = time.monotonic() + TIMEOUT
    while target.lease_of(guest) is None and victim.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()
    time.sleep(3)  # had any part of the run survived the kill, it would release the lease now
    held = target.lease_of(guest)
    assert held, 'the run finished before it could be killed holding the lease'
    dead = dead_run_of(held)
    started = time.monotonic()
    heir = Run(target.call([guest], 'heir', timeout=TIMEOUT)).wait(short + LEASE_MARGIN_SECONDS + TIMEOUT * 2)
    result = heir.result()
    assert heir.rc == 0, result.get('msg')
    waited = time.monotonic() - started
    assert any('stale lease' in w and dead in w for w in result.get('warnings', [])), result.get('warnings')
    # It waited for the expiry (timeout + margin after the victim took it), not less.
    assert waited >= LEASE_MARGIN_SECONDS - 5
    tree = target.tree(guest)
    assert 'heir' in tree
    if target.kills_before_the_call:
        assert 'victim' not in tree
    assert target.lease_of(guest) is None

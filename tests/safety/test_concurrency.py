"""Two ansible-playbook runs acting on the same real libvirt guests at once (issue 9, Concurrency).

Each case starts two runs side by side; whatever the interleaving, one waits for the other (or
fails naming it), the snapshot tree is a consistent tree, and a set never half-applies. A run
SIGKILLed while it holds a guest's lease is taken over after the lease expires, with a warning.
"""

from __future__ import annotations

import json
import time

import libvirt
import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LEASE_NAMESPACE
from ansible_collections.savepoint.virt.plugins.module_utils._locking import LEASE_MARGIN_SECONDS

from safety.runs import Run

TINY_GUEST_PREFIX = 'sp-safety'

pytestmark = pytest.mark.qemu
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


def tree(guest):
    """{name: parent} of the guest's snapshots, checked to be one consistent tree."""
    snaps = guest.dom.listAllSnapshots(0)
    names = [s.getName() for s in snaps]
    assert len(names) == len(set(names)), 'duplicate snapshot names: %s' % names
    parents = {}
    for snap in snaps:
        try:
            parents[snap.getName()] = snap.getParent(0).getName()
        except libvirt.libvirtError:
            parents[snap.getName()] = None
    for name, parent in parents.items():
        assert parent is None or parent in parents, '%s has a missing parent %s' % (name, parent)
    return parents


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


@pytest.mark.parametrize('case', CASES)
def test_two_runs_at_once(tiny_guests, case):
    g1, g2 = tiny_guests(), tiny_guests()
    if case == 'same_name_twice':
        a, b = both(call([g1.name], 'same'), call([g1.name], 'same'))
        results = [ok_or_busy(a), ok_or_busy(b)]
        assert sorted(r['results'][0]['action'] for r in results if r.get('results')) in (
            ['created', 'exists'], ['created'])
        assert list(tree(g1)) == ['same']
    elif case == 'two_names':
        a, b = both(call([g1.name], 'first'), call([g1.name], 'second'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        parents = tree(g1)
        assert sorted(parents) == ['first', 'second']
        # serialised: one is the child of the other, never two roots racing for "current"
        assert sorted(parents.values(), key=str) in ([None, 'first'], [None, 'second'])
    elif case == 'create_and_revert':
        assert Run(call([g1.name], 'base')).wait(TIMEOUT * 2).rc == 0
        a, b = both(call([g1.name], 'base', state='reverted'), call([g1.name], 'next'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        assert sorted(tree(g1)) == ['base', 'next']
    elif case == 'create_and_delete':
        assert Run(call([g1.name], 'old')).wait(TIMEOUT * 2).rc == 0
        a, b = both(call([g1.name], 'old', state='absent'), call([g1.name], 'new'))
        assert a.rc == 0 and b.rc == 0, (a.result()['msg'], b.result()['msg'])
        assert sorted(tree(g1)) == ['new']
    elif case == 'crossed_sets':
        # Two sets over the same two guests named in opposite order: no deadlock, no half set.
        a, b = both(call([g1.name, g2.name], 'set-a'), call([g2.name, g1.name], 'set-b'))
        for run, name in ((a, 'set-a'), (b, 'set-b')):
            ok_or_busy(run)
            present = [name in tree(g) for g in (g1, g2)]
            assert present in ([True, True], [False, False]), '%s half applied: %s' % (name, present)
        assert a.rc == 0 or b.rc == 0
    for guest in (g1, g2):
        assert lease_of(guest) is None, 'a lease was left behind on %s' % guest.name


def test_run_killed_holding_the_lease_is_taken_over_after_expiry(tiny_guests):
    guest = tiny_guests()
    short = 5
    victim = Run(call([guest.name], 'victim', timeout=short))
    deadline = time.monotonic() + TIMEOUT
    while lease_of(guest) is None and victim.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()
    time.sleep(3)  # had any part of the run survived the kill, it would release the lease now
    held = lease_of(guest)
    assert held is not None, 'the run finished before it could be killed holding the lease'
    dead = json.loads(__import__('xml.etree.ElementTree', fromlist=['x']).fromstring(held).text)
    started = time.monotonic()
    heir = Run(call([guest.name], 'heir', timeout=TIMEOUT)).wait(short + LEASE_MARGIN_SECONDS + TIMEOUT * 2)
    result = heir.result()
    assert heir.rc == 0, result.get('msg')
    waited = time.monotonic() - started
    assert any('stale lease' in w and dead['run'] in w for w in result.get('warnings', [])), result.get('warnings')
    # It waited for the expiry (timeout + margin after the victim took it), not less.
    assert waited >= LEASE_MARGIN_SECONDS - 5
    assert 'heir' in tree(guest) and 'victim' not in tree(guest)
    assert lease_of(guest) is None

"""libvirt's test driver is recognised as such (real libvirt, in-process test:///default driver).

libvirt names the driver 'TEST' (virConnectGetType); the backend once compared 'Test', so the test
driver was taken for a real hypervisor and offered external snapshots and quiescing it cannot do.
"""

from __future__ import annotations

import uuid

import libvirt
import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

URI = 'test:///default'


@pytest.fixture
def test_domain():
    # The test driver keeps its state only while a connection is open in this process.
    conn = libvirt.open(URI)
    name = 'testdrv-%s' % uuid.uuid4().hex[:8]
    dom = conn.defineXML("<domain type='test'><name>%s</name><memory unit='MiB'>64</memory>"
                         "<os><type arch='x86_64'>hvm</type></os></domain>" % name)
    dom.create()
    try:
        yield name
    finally:
        dom.destroy()
        dom.undefine()
        conn.close()


def test_libvirt_names_its_test_driver_TEST():
    conn = libvirt.open(URI)
    try:
        assert conn.getType() == 'TEST'
    finally:
        conn.close()


def test_backend_recognises_the_test_driver(test_domain):
    backend = LibvirtBackend({'uri': URI})
    backend.connect()
    try:
        assert backend.is_test_driver is True
        guest = backend.find_guests([GuestRef(name=test_domain)])[0]
        assert guest.power_state == 'running'
        caps = backend.capabilities(guest)
        # What the test driver cannot do is refused, with the reason naming the test driver.
        assert caps.external is False and caps.quiesce is False
        assert 'test driver' in caps.reasons['external']
        assert 'test driver' in caps.reasons['quiesce']
        assert caps.internal is True and caps.memory is True
    finally:
        backend.close()

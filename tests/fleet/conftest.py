"""Fixtures of the fleet tests: one 'world' per provider that makes guests and snapshots
through the provider's own API (foreign ones) or the engine (owned ones)."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any, Dict, List

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

from .helpers import engine_create

SECRET = 'Fleet-Pw-4711-never-printed'


class LibvirtWorld:
    provider = 'libvirt'

    def __init__(self) -> None:
        import libvirt
        from services.libvirt import ensure_daemon
        ensure_daemon(sys.executable)
        self.libvirt = libvirt
        self.conn = libvirt.open('qemu:///system')
        self.made: List[Any] = []

    def connection(self) -> Dict[str, Any]:
        return {'uri': 'qemu:///system'}

    def backend(self):
        from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
        return LibvirtBackend(self.connection())

    def new_guest(self) -> Dict[str, Any]:
        from services.libvirt import TinyGuest
        guest = TinyGuest(self.conn, name='sp-fleet-%s' % uuid.uuid4().hex[:8]).create()
        self.made.append(guest)
        return {'name': guest.name, 'uuid': guest.dom.UUIDString(), 'ref': GuestRef(name=guest.name),
                'handle': guest}

    def foreign(self, guest: Dict[str, Any], name: str) -> None:
        xml = '<domainsnapshot><name>%s</name><description>made by hand</description></domainsnapshot>' % name
        guest['handle'].dom.snapshotCreateXML(xml, 0)

    def names(self, guest: Dict[str, Any]) -> List[str]:
        return sorted(s.getName() for s in guest['handle'].dom.listAllSnapshots(0))

    def cleanup(self) -> None:
        for guest in self.made:
            guest.destroy()
        self.conn.close()


class VmwareWorld:
    provider = 'vmware'

    def __init__(self) -> None:
        from contract.harness_vmware import VcsimInventory, shared_vcsim
        self.server = shared_vcsim()
        self.inventory = VcsimInventory(self.server)

    def connection(self) -> Dict[str, Any]:
        from contract.harness_vmware import connection
        # vcsim takes any password: a distinctive one, so the tests can prove it is never printed
        return connection(self.server, password=SECRET)

    def backend(self):
        from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
        return VmwareBackend(self.connection())

    def new_guest(self) -> Dict[str, Any]:
        vm = self.inventory.new_vm(name='fleet-%s' % uuid.uuid4().hex[:8])
        return {'name': vm.name, 'uuid': vm.config.uuid, 'ref': GuestRef(name=vm.name), 'handle': vm}

    def foreign(self, guest: Dict[str, Any], name: str) -> None:
        from pyVim.task import WaitForTask
        WaitForTask(guest['handle'].CreateSnapshot_Task(name=name, description='made by hand', memory=False,
                                                        quiesce=False))

    def names(self, guest: Dict[str, Any]) -> List[str]:
        snap = guest['handle'].snapshot
        found: List[str] = []

        def walk(nodes):
            for node in nodes:
                found.append(node.name)
                walk(node.childSnapshotList)
        if snap is not None:
            walk(snap.rootSnapshotList)
        return sorted(found)

    def cleanup(self) -> None:
        self.inventory.destroy_made()
        self.inventory.close()


class OpenStackWorld:
    provider = 'openstack'

    def __init__(self) -> None:
        from contract.harness_openstack import StackServers, shared_stack
        self.stack = shared_stack()
        self.servers = StackServers(self.stack)

    def connection(self) -> Dict[str, Any]:
        from contract.harness_openstack import connection
        return connection()

    def backend(self):
        from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
        return OpenStackBackend(self.connection())

    def new_guest(self) -> Dict[str, Any]:
        server = self.servers.boot()
        return {'name': server.name, 'uuid': server.id, 'ref': GuestRef(name=server.name), 'handle': server}

    def foreign(self, guest: Dict[str, Any], name: str) -> None:
        sdk = self.servers.conn
        image = sdk.compute.create_server_image(guest['handle'], name, wait=True, timeout=300)
        sdk.image.wait_for_status(image, status='active', failures=['killed'], interval=0.5, wait=300)

    def names(self, guest: Dict[str, Any]) -> List[str]:
        with self.backend() as backend:
            return sorted(s.name for s in backend.list_snapshots(backend.find_guest(GuestRef(id=guest['uuid']))))

    def cleanup(self) -> None:
        # snapshots (images) of the servers go with them (harness cleanup deletes both)
        self.servers.cleanup()
        self.servers.conn.close()


WORLDS = {'libvirt': (LibvirtWorld, pytest.mark.qemu), 'vmware': (VmwareWorld, pytest.mark.vmware),
          'openstack': (OpenStackWorld, pytest.mark.openstack)}


@pytest.fixture(params=[pytest.param(name, marks=mark) for name, (_cls, mark) in WORLDS.items()])
def world(request):
    made = WORLDS[request.param][0]()
    try:
        yield made
    finally:
        made.cleanup()


def owned(world, guest: Dict[str, Any], name: str, **kw: Any) -> None:
    with world.backend() as backend:
        engine_create(backend, guest['ref'], name, **kw)


def wait_past(seconds: float) -> None:
    time.sleep(seconds)

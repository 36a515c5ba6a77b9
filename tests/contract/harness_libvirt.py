"""libvirt harnesses: the in-process test driver, and a real libvirtd with QEMU."""

from __future__ import annotations

import sys
import uuid
from typing import List

import libvirt

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

from contract.harness import ProviderHarness
from services.libvirt import TinyGuest, ensure_daemon

_STATES = {1: 'running', 2: 'running', 3: 'paused', 5: 'off'}


class LibvirtTestDriverHarness(ProviderHarness):
    """libvirt's built-in test driver: in memory, per process, milliseconds per test."""

    name = 'libvirt-test'
    uri = 'test:///default'

    def start(self) -> None:
        # The test driver keeps its state only while a connection is open in this process.
        self.conn = libvirt.open(self.uri)
        self.guests: List = []

    def stop(self) -> None:
        self.conn.close()

    def backend(self) -> LibvirtBackend:
        return LibvirtBackend({'uri': self.uri})

    def new_guest(self) -> GuestRef:
        name = 'contract-%s' % uuid.uuid4().hex[:8]
        dom = self.conn.defineXML("<domain type='test'><name>%s</name><memory unit='MiB'>64</memory>"
                                  "<os><type arch='x86_64'>hvm</type></os></domain>" % name)
        dom.create()
        self.guests.append(dom)
        return GuestRef(name=name)

    def power_state(self, ref: GuestRef) -> str:
        return _STATES[self.conn.lookupByName(ref.name).state()[0]]

    def cleanup(self) -> None:
        for dom in self.guests:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        self.guests = []


class LibvirtQemuHarness(ProviderHarness):
    """A real libvirtd with QEMU under software emulation and tiny guests with no OS."""

    name = 'libvirt-qemu'
    mark = 'qemu'
    uri = 'qemu:///system'

    def start(self) -> None:
        ensure_daemon(sys.executable)
        self.conn = libvirt.open(self.uri)
        self.guests: List[TinyGuest] = []

    def stop(self) -> None:
        self.conn.close()

    def backend(self) -> LibvirtBackend:
        return LibvirtBackend({'uri': self.uri})

    def new_guest(self) -> GuestRef:
        guest = TinyGuest(self.conn).create()
        self.guests.append(guest)
        return GuestRef(name=guest.name)

    def power_state(self, ref: GuestRef) -> str:
        return _STATES[self.conn.lookupByName(ref.name).state()[0]]

    def cleanup(self) -> None:
        for guest in self.guests:
            guest.destroy()
        self.guests = []


HARNESSES = [LibvirtTestDriverHarness, LibvirtQemuHarness]

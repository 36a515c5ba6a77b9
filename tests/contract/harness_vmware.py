"""VMware harness: the contract suite against vcsim (govmomi's vSphere simulator).

One vcsim serves the whole pytest session (the contract suite and tests/vmware
share it through shared_vcsim()); it is stopped when the interpreter exits.
Each contract test gets fresh VMs made with CreateVM_Task and destroyed after.
"""

from __future__ import annotations

import uuid
from typing import Any, List, Optional

from pyVim.connect import Disconnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

from contract.harness import ProviderHarness
from services.vcsim import VcsimServer

#: vcsim -vm N gives 2N VMs; 50 per pool (100 VMs) for the bulk tests, ready in about a second
VMS_PER_POOL = 50
_SHARED: dict = {}
_POWER = {'poweredOn': 'running', 'poweredOff': 'off', 'suspended': 'suspended'}


def shared_vcsim() -> VcsimServer:
    """The session's vcsim, started on first use; raises VcsimError (the tests fail) if it cannot start."""
    server = _SHARED.get('server')
    if server is None or not server.running:
        server = VcsimServer(vms_per_pool=VMS_PER_POOL)
        server.start()
        _SHARED['server'] = server
    return server


def connection(server: VcsimServer, **extra: Any) -> dict:
    conn = {'hostname': server.host, 'port': server.port, 'username': 'user', 'password': 'pass',
            'validate_certs': False, 'honor_capability_flags': False}
    conn.update(extra)
    return conn


class VcsimInventory:
    """Direct pyVmomi access to vcsim, independent of the backend under test."""

    def __init__(self, server: VcsimServer) -> None:
        self.server = server
        self.si = server.connect()
        content = self.si.RetrieveContent()
        self.content = content
        self.dc = content.searchIndex.FindByInventoryPath('DC0')
        self.host = content.searchIndex.FindByInventoryPath('DC0/host/DC0_H0/DC0_H0')
        self.pool = content.searchIndex.FindByInventoryPath('DC0/host/DC0_H0/Resources')
        self.made: List[Any] = []

    def close(self) -> None:
        Disconnect(self.si)

    def folder(self, path: str) -> Any:
        """DC0/vm/<path>, created if missing."""
        parent = self.dc.vmFolder
        for part in path.strip('/').split('/'):
            child = next((c for c in parent.childEntity if isinstance(c, vim.Folder) and c.name == part), None)
            parent = child if child is not None else parent.CreateFolder(part)
        return parent

    def new_vm(self, name: Optional[str] = None, folder: Optional[str] = None, power_on: bool = True) -> Any:
        name = name or 'contract-%s' % uuid.uuid4().hex[:8]
        spec = vim.vm.ConfigSpec(name=name, guestId='otherGuest64', numCPUs=1, memoryMB=64,
                                 files=vim.vm.FileInfo(vmPathName='[LocalDS_0]'))
        parent = self.folder(folder) if folder else self.dc.vmFolder
        task = parent.CreateVM_Task(config=spec, pool=self.pool, host=self.host)
        WaitForTask(task)
        vm = task.info.result
        self.made.append(vm)
        if power_on:
            WaitForTask(vm.PowerOnVM_Task())
        return vm

    def vm(self, ref: GuestRef) -> Any:
        if ref.id:
            return vim.VirtualMachine(ref.id, self.si._stub)  # pylint: disable=protected-access
        if ref.uuid:
            return self.content.searchIndex.FindByUuid(None, ref.uuid, True, False)
        return self.content.searchIndex.FindByInventoryPath('%s/%s' % (ref.folder or 'DC0/vm', ref.name))

    def power_state(self, ref: GuestRef) -> str:
        return _POWER[str(self.vm(ref).runtime.powerState)]

    def destroy_made(self) -> None:
        for vm in self.made:
            try:
                if vm.runtime.powerState != 'poweredOff':
                    WaitForTask(vm.PowerOffVM_Task())
                WaitForTask(vm.Destroy_Task())
            except vim.fault.VimFault:
                pass
        self.made = []


class VcsimHarness(ProviderHarness):
    name = 'vmware-vcsim'
    mark = 'vmware'
    timeout = 60.0

    def start(self) -> None:
        self.server = shared_vcsim()
        self.inventory = VcsimInventory(self.server)

    def stop(self) -> None:
        # The shared vcsim is stopped at interpreter exit (VcsimServer's atexit hook).
        self.inventory.close()

    def backend(self) -> VmwareBackend:
        return VmwareBackend(connection(self.server))

    def new_guest(self) -> GuestRef:
        return GuestRef(name=self.inventory.new_vm().name)

    def power_state(self, ref: GuestRef) -> str:
        return self.inventory.power_state(ref)

    def cleanup(self) -> None:
        self.inventory.destroy_made()


HARNESSES = [VcsimHarness]

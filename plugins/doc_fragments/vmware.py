# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # VMware vSphere connection and guest lookup options.
    DOCUMENTATION = r'''
options:
  hostname:
    description:
      - vCenter or ESXi host name or address.
      - If not set, the environment variable E(VMWARE_HOST) is used.
    type: str
  username:
    description:
      - vSphere user name.
      - If not set, the environment variable E(VMWARE_USER) is used.
    type: str
    aliases: [user, admin]
  password:
    description:
      - Password of O(username). Never written to any output or error message.
      - If not set, the environment variable E(VMWARE_PASSWORD) is used.
    type: str
    aliases: [pass, pwd]
  port:
    description:
      - HTTPS port of the vSphere API.
      - If not set, the environment variable E(VMWARE_PORT) is used, then V(443).
    type: int
  validate_certs:
    description:
      - Verify the server's TLS certificate against the system's CAs. On by default, also for
        C(localhost) and C(127.0.0.1) (pyVmomi itself would silently skip verification there).
      - If not set, the environment variable E(VMWARE_VALIDATE_CERTS) is used, then V(true).
      - A certificate that cannot be verified fails the task with C(error=certificate_verify_failed).
    type: bool
  proxy_host:
    description:
      - Host name or address of an HTTP proxy that allows C(CONNECT); the TLS session to vSphere runs
        through it, still verified as set by O(validate_certs).
      - If not set, the environment variable E(VMWARE_PROXY_HOST) is used.
      - Needs O(proxy_port).
    type: str
  proxy_port:
    description:
      - Port of O(proxy_host).
      - If not set, the environment variable E(VMWARE_PROXY_PORT) is used.
      - Needs O(proxy_host).
    type: int
  datacenter:
    description:
      - Look guests up in this datacenter only (UUID and name lookups), and read O(folder) relative to it.
    type: str
  honor_capability_flags:
    description:
      - Whether the VM's C(capability) flags (C(snapshotOperationsSupported), C(memorySnapshotsSupported),
        C(quiescedSnapshotsSupported), C(revertToSnapshotSupported)) can refuse a request before anything
        is written.
      - With V(true) a request the flags rule out fails with the flag's name, instead of being sent
        to vSphere (which may silently ignore C(memory) or C(quiesce)).
      - V(false) lets the server decide. Use it only for servers whose flags are known to be wrong, such
        as the vcsim simulator, which reports every flag false. Whatever this option says, the module
        checks afterwards that a new snapshot really holds the memory or quiescing that was asked for,
        and removes it again and fails if it does not.
    type: bool
    default: true
  moid:
    description:
      - Managed object id of the VMware virtual machine, for example V(vm-42). Looked up by direct reference.
      - Mutually exclusive with O(name) and O(uuid).
    type: str
  folder:
    description:
      - Inventory folder of the VMware virtual machine named by O(name), for example V(DC0/vm/prod)
        or, with O(datacenter), V(vm/prod) or V(prod). Looked up with the SearchIndex (cost does not grow
        with the inventory).
      - Without O(folder), a bare O(name) is looked up with one property-collector retrieval of every
        VM's name; an ambiguous name fails and lists the matching VMs' moids.
      - With O(guests), the default folder of entries that do not set their own.
    type: str
requirements:
  - pyVmomi (C(pip install pyvmomi)) where the module runs
'''

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: vmware_snapshot
short_description: Take, revert, delete and prune snapshots of VMware vSphere virtual machines
version_added: 0.1.0
description:
  - Manages restore points of virtual machines on vCenter or ESXi through pyVmomi.
  - Guests are found by O(name) (optionally in a O(folder)), O(uuid) (BIOS or instance UUID) or O(moid),
    with a constant number of API calls whatever the size of the inventory. An ambiguous name is an
    error listing the matching VMs' moids; a missing snapshot name is never reported as success.
  - Create with or without memory and with O(quiesce) V(required), V(preferred) or V(never); VMware
    Tools must be running for quiescing, and this is checked before anything is written (vSphere itself
    silently ignores quiescing without Tools).
  - Revert to any snapshot in the tree; O(power_state) is enforced by the module after the revert and
    checked, not left to the server.
  - Delete one snapshot (its children are kept) or a whole subtree; disks are consolidated by the
    delete (C(consolidate=true)).
  - Several guests (O(guests)) are handled in one task; all snapshot tasks are started at once and
    waited for together through the property collector (C(WaitForUpdatesEx)) within O(timeout).
  - Every snapshot it creates carries an ownership and expiry marker as the last line of its
    description, a line starting with C([savepoint.virt]) followed by JSON with the owner, the creator
    and the expiry time. The marker is split off again when reading, so the returned description is
    the user's text.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - savepoint.virt.guest
  - savepoint.virt.snapshot
  - savepoint.virt.libvirt
  - savepoint.virt.vmware
  - savepoint.virt.openstack
  - savepoint.virt.openstack.snapshot_options
  - savepoint.virt.module_defaults
attributes:
  action_group:
    support: full
    membership:
      - savepoint.virt.snapshot
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - VMware snapshots are always O(kind=internal); O(kind=external) is refused.
  - When O(memory) is not set, snapshots are taken without memory (vSphere's default); reverting to
    such a snapshot with O(power_state=restore) leaves the VM powered off, as vCenter does.
  - With O(wait=false) the task ids are returned in C(results[].operations); the steps that need the
    task to finish are then skipped, so O(power_state) is not enforced after a revert and a new snapshot
    is not checked for the memory or quiescing that was asked for. Use it only when that is acceptable.
  - See docs/vmware.md in the collection for what was only checked against the vcsim simulator.
author:
  - savepoint.virt developers (@savepoint-virt)
'''

EXAMPLES = r'''
- name: Take a restore point before patching
  savepoint.virt.vmware_snapshot:
    hostname: vcenter.example.com
    username: automation@vsphere.local
    password: "{{ vcenter_password }}"
    datacenter: DC1
    folder: prod/web
    name: web01
    snapshot_name: pre-patch
    description: before the monthly patch run
    quiesce: preferred
    expires_in: 7d

- name: Revert to it and make sure the VM runs afterwards
  savepoint.virt.vmware_snapshot:
    moid: vm-1042
    snapshot_name: pre-patch
    state: reverted
    power_state: 'on'

- name: One snapshot set over three VMs, all or nothing
  savepoint.virt.vmware_snapshot:
    guests:
      - web01
      - {uuid: 4219c6b4-52b1-4f1a-9b1e-6c3b1a0e3b8d}
      - {moid: vm-77}
    snapshot_name: release-42

- name: Remove owned snapshots that expired
  savepoint.virt.vmware_snapshot:
    guests: [web01, web02, db01]
    state: pruned
    expired: true
'''

RETURN = r'''

# The result schema is the same for every provider; see the RETURN section of
# savepoint.virt.snapshot for each key of results[] and of a snapshot record.
msg:
  description: What happened, in one sentence.
  returned: always
  type: str
  sample: "created snapshot 'pre-patch' of guest 'web01'"
action:
  description: What was done when the task names one guest, see M(savepoint.virt.snapshot).
  returned: always
  type: str
guest:
  description: The guest, when the task names one guest.
  returned: always
  type: dict
snapshot:
  description: The snapshot record affected, when the task names one guest.
  returned: always
  type: dict
results:
  description: One entry per guest, see M(savepoint.virt.snapshot).
  returned: always
  type: list
  elements: dict
provider:
  description: The provider that ran the task.
  returned: always
  type: str
  sample: vmware
'''

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([VmwareBackend], 'vmware_snapshot')


if __name__ == '__main__':
    main()

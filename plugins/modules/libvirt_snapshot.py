#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: libvirt_snapshot
short_description: Take, revert, delete and prune snapshots of libvirt/KVM guests
version_added: 0.1.0
description:
  - Manages restore points of libvirt domains (KVM/QEMU and any other libvirt driver) through libvirt-python.
  - Internal snapshots (inside qcow2 images) of running (with memory), paused and shut-off guests;
    external disk-only snapshots; revert to any snapshot in the tree; delete with or without children.
  - Every snapshot it creates carries an ownership and expiry marker in its description, so
    O(state=pruned) only ever removes snapshots it owns.
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
  - Reverting to an external snapshot needs libvirt 9.9.0 or newer on the host; older versions are
    refused before anything is changed.
  - O(quiesce) works only with O(kind=external) on a running guest with a connected QEMU guest agent.
author:
  - savepoint.virt developers (@savepoint-virt)
'''

EXAMPLES = r'''
- name: Take a restore point before patching
  savepoint.virt.libvirt_snapshot:
    uri: qemu:///system
    name: web01
    snapshot_name: pre-patch
    description: before the monthly patch run
    expires_in: 7d

- name: Revert to it and make sure the guest runs afterwards
  savepoint.virt.libvirt_snapshot:
    name: web01
    snapshot_name: pre-patch
    state: reverted
    power_state: 'on'

- name: Remove owned snapshots that expired, on several guests
  savepoint.virt.libvirt_snapshot:
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
  sample: "created snapshot 'pre-patch' of guest 'web01' (guest blocked 0.013s)"
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
  sample: libvirt
'''

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([LibvirtBackend], 'libvirt_snapshot')


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: vmware_snapshot_info
short_description: Report the snapshot trees of VMware vSphere virtual machines
version_added: 0.1.0
description:
  - Lists the snapshots of one VM, of several, or of every VM (in O(datacenter) when set) when no
    guest is named, with parent/children, the current snapshot, memory and quiesce flags, the
    ownership and expiry marker, and sizes from the VM's file layout (C(layoutEx)) where vSphere
    reports them (null otherwise, never estimated).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - savepoint.virt.guest
  - savepoint.virt.libvirt
  - savepoint.virt.vmware
  - savepoint.virt.openstack
  - savepoint.virt.module_defaults
  - savepoint.virt.module_defaults.info
attributes:
  action_group:
    support: full
    membership:
      - savepoint.virt.snapshot
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - savepoint.virt developers (@savepoint-virt)
'''

EXAMPLES = r'''
- name: Every VM's snapshots in one datacenter
  savepoint.virt.vmware_snapshot_info:
    hostname: vcenter.example.com
    username: automation@vsphere.local
    password: "{{ vcenter_password }}"
    datacenter: DC1
  register: report

- name: One VM by UUID
  savepoint.virt.vmware_snapshot_info:
    uuid: 4219c6b4-52b1-4f1a-9b1e-6c3b1a0e3b8d
'''

RETURN = r'''
# The same schema as savepoint.virt.snapshot_info, where each key is described.
guests:
  description: One entry per guest, see M(savepoint.virt.snapshot_info).
  returned: always
  type: list
  elements: dict
snapshots:
  description: The snapshot records when exactly one guest was named; null otherwise.
  returned: always
  type: list
  elements: dict
msg:
  description: A one-line summary.
  returned: always
  type: str
'''

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([VmwareBackend], 'vmware_snapshot_info', info=True)


if __name__ == '__main__':
    main()

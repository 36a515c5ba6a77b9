#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: libvirt_snapshot_info
short_description: Report the snapshot trees of libvirt/KVM guests
version_added: 0.1.0
description:
  - Lists the snapshots of one guest, of several, or of every guest on the connection when no
    guest is named (an inventory-wide report of restore points, their age, size and expiry).
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
- name: Every guest's snapshots on this host
  savepoint.virt.libvirt_snapshot_info:
    uri: qemu:///system
  register: report

- name: One guest
  savepoint.virt.libvirt_snapshot_info:
    name: web01
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

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([LibvirtBackend], 'libvirt_snapshot_info', info=True)


if __name__ == '__main__':
    main()

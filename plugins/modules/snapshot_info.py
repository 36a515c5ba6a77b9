#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: snapshot_info
short_description: Report the snapshot trees of guests on any supported provider
version_added: 0.1.0
description:
  - Lists the snapshots of one guest, of several, or of every guest on the connection when no
    guest is named (an inventory-wide report of restore points, their age, size and expiry).
options:
  provider:
    description:
      - Which backend to ask.
    type: str
    required: true
    choices: [libvirt, openstack, vmware]
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
  savepoint.virt.snapshot_info:
    provider: libvirt
    uri: qemu:///system
  register: report

- name: One guest
  savepoint.virt.snapshot_info:
    provider: libvirt
    name: web01
'''

RETURN = r'''
guests:
  description: One entry per guest.
  returned: always
  type: list
  elements: dict
  contains:
    guest:
      description: The guest's C(name), C(id) and C(power_state).
      type: dict
    snapshots:
      description: Snapshot records, see M(savepoint.virt.snapshot) for their keys.
      type: list
      elements: dict
    current:
      description: Name of the current snapshot, or null.
      type: str
    tree:
      description: The tree as indented text.
      type: str
snapshots:
  description: The snapshot records when exactly one guest was named; null otherwise.
  returned: always
  type: list
  elements: dict
msg:
  description: A one-line summary.
  returned: always
  type: str
provider:
  description: The provider.
  returned: always
  type: str
'''

from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for(BACKENDS, 'snapshot_info', info=True, neutral=True)


if __name__ == '__main__':
    main()

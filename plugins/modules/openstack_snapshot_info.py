#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: openstack_snapshot_info
short_description: Report the snapshots of OpenStack servers
version_added: 0.1.0
description:
  - Lists the snapshot images of one server, of several, or of every server of the project when no
    server is named, with parent/children, the current snapshot, the ownership and expiry marker, the
    image status and, for boot-from-volume servers, the Cinder volume snapshots behind each image.
  - Images this collection did not make (for example C(openstack server image create)) are listed
    without owner, expiry or parent.
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
- name: Every server's snapshots in the project
  savepoint.virt.openstack_snapshot_info:
    cloud: prod
  register: report

- name: One server by id
  savepoint.virt.openstack_snapshot_info:
    cloud: prod
    server_id: 5b7c2f58-1f5e-4a7d-9a8e-0c2d6f1e9b11
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

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([OpenStackBackend], 'openstack_snapshot_info', info=True)


if __name__ == '__main__':
    main()

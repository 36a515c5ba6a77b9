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
  - savepoint.virt.openstack
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
# The same schema as savepoint.virt.snapshot_info; the OpenStack meaning of each key is given here.
guests:
  description: One entry per server.
  returned: always
  type: list
  elements: dict
  contains:
    guest:
      description: The server's C(name), C(id) (server id) and C(power_state).
      type: dict
    snapshots:
      description: Snapshot records, the keys of RV(snapshots).
      type: list
      elements: dict
    current:
      description: Name of the current snapshot, or null.
      type: str
    tree:
      description: The tree as indented text.
      type: str
snapshots:
  description: The snapshot records when exactly one server was named; null otherwise.
  returned: always
  type: list
  elements: dict
  contains:
        name:
          description: Snapshot name (the image name for images this collection did not make).
          type: str
        id:
          description: Glance image id of the snapshot.
          type: str
        parent:
          description: Name of the parent snapshot; null for images this collection did not make.
          type: str
        parent_id:
          description: Image id of the parent snapshot.
          type: str
        children:
          description: Names of the child snapshots.
          type: list
          elements: str
        created_at:
          description: Creation time of the image, ISO 8601 in UTC.
          type: str
        current:
          description: Whether it is the server's current snapshot (see the module's description).
          type: bool
        power_state:
          description: Power state of the server when it was taken (C(unknown) for images this collection did not make).
          type: str
        memory:
          description: Always false (Nova snapshots hold the disk only).
          type: bool
        quiesced:
          description: Always null (not recorded).
          type: bool
        kind:
          description: Always C(internal).
          type: str
        size_bytes:
          description: Image size of an active image-backed snapshot; null for boot-from-volume ones.
          type: int
        description:
          description: The user's description.
          type: str
        owner:
          description: Owner from the ownership marker; null for images this collection did not make.
          type: str
        created_by:
          description: Which module and collection version took it; null for images this collection did not make.
          type: str
        expires_at:
          description: Expiry time, ISO 8601 in UTC, or null.
          type: str
        provider_details:
          description: OpenStack details of the snapshot.
          type: dict
          contains:
            image_id:
              description: Glance image id.
              type: str
            image_name:
              description: Glance image name.
              type: str
            status:
              description: Glance image status (C(active), C(queued), C(saving), ...).
              type: str
            boot_from_volume:
              description: Whether the image is a volume-backed snapshot (its data is in Cinder snapshots).
              type: bool
            volume_snapshots:
              description: Ids of the Cinder snapshots behind it (root volume of a boot-from-volume server, data volumes of C(include_volumes)).
              type: list
              elements: str
            include_volumes:
              description: Whether it was taken with C(include_volumes=true) of M(savepoint.virt.openstack_snapshot).
              type: bool
            volumes:
              description: With C(include_volumes), one entry per data volume snapshot (C(snapshot_id), C(volume_id), C(status), C(size_gb), C(size_bytes)).
              type: list
              elements: dict
            volumes_size_bytes:
              description: Sum of the sizes of those volume snapshots.
              type: int
msg:
  description: A one-line summary.
  returned: always
  type: str
provider:
  description: The provider.
  returned: always
  type: str
  sample: openstack
'''

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([OpenStackBackend], 'openstack_snapshot_info', info=True)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: openstack_snapshot
short_description: Take, revert, delete and prune snapshots of OpenStack servers
version_added: 0.1.0
description:
  - Manages restore points of OpenStack (Nova) servers through openstacksdk, as the user of the
    configured cloud (a plain project member is enough).
  - A snapshot is the Glance image Nova's createImage makes of the server. It carries image properties
    C(savepoint_server_id), C(savepoint_snapshot_name), C(savepoint_parent_id), C(savepoint_power_state),
    C(savepoint_description), C(savepoint_owner), C(savepoint_created_by), C(savepoint_expires_at) and,
    once it is active, C(savepoint_image_id) (its own id). Only images whose C(savepoint_image_id) is their
    own id count as made by this collection, so properties Nova copies from a base image into later
    snapshots never make a hand-made image look owned (O(state=pruned) never removes it).
  - The server's snapshots are the images with its C(instance_uuid), plus the boot-from-volume snapshots
    this collection made. Images that this collection did not make are listed without owner or parent.
  - Revert rebuilds the server from the snapshot image; the server keeps its id and ports. Then
    O(power_state) is enforced by the module (V(restore) = the state recorded when the snapshot was
    taken) and checked.
  - The current snapshot is kept in the server's metadata (C(savepoint_current), C(savepoint_current_base)).
    It is the snapshot last created or reverted to by this collection, as long as the server was not
    rebuilt since; otherwise the snapshot image the server runs, if any.
  - Deleting a snapshot removes its image and, for boot-from-volume servers, the Cinder volume snapshots
    its C(block_device_mapping) refers to (those first, so a failure can be retried); with
    O(include_volumes) also the Cinder snapshots of the data volumes it holds.
  - Waiting for images to become active and for rebuilds is bounded by O(timeout); an unfinished
    snapshot image is deleted at the deadline, so no half-made restore point is left.
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
  - Boot-from-volume servers can be snapshotted, listed and their snapshots deleted. A revert is refused
    before anything is changed unless O(boot_from_volume_revert=reimage). Nova 34 fails every rebuild of
    a volume-backed server onto its own snapshot image, and Cinder cannot revert an attached volume. See
    docs/openstack.md.
  - Snapshots are disk-only (O(memory=true) is refused) and not quiesced by this collection
    (O(quiesce=required) is refused, V(preferred) falls back with a warning).
  - Only ACTIVE and SHUTOFF servers can be reverted (Nova rebuilds nothing else).
author:
  - savepoint.virt developers (@savepoint-virt)
'''

EXAMPLES = r'''
- name: Take a restore point before patching
  savepoint.virt.openstack_snapshot:
    cloud: prod
    name: web01
    snapshot_name: pre-patch
    description: before the monthly patch run
    expires_in: 7d

- name: Revert to it (same server id and ports) and make sure the server runs afterwards
  savepoint.virt.openstack_snapshot:
    cloud: prod
    server_id: 5b7c2f58-1f5e-4a7d-9a8e-0c2d6f1e9b11
    snapshot_name: pre-patch
    state: reverted
    power_state: 'on'

- name: Explicit credentials instead of clouds.yaml
  savepoint.virt.openstack_snapshot:
    auth:
      auth_url: https://keystone.example.com:5000/v3
      username: automation
      password: "{{ os_password }}"
      project_name: web
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    guests: [web01, web02]
    snapshot_name: release-42

- name: Take a restore point that also holds Cinder snapshots of the server's data volumes
  savepoint.virt.openstack_snapshot:
    cloud: prod
    name: db01
    snapshot_name: pre-migration
    include_volumes: true

- name: Revert the server and its (detached) data volumes to it
  savepoint.virt.openstack_snapshot:
    cloud: prod
    name: db01
    snapshot_name: pre-migration
    state: reverted

- name: Remove owned snapshots that expired
  savepoint.virt.openstack_snapshot:
    cloud: prod
    guests: [web01, web02]
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
  sample: openstack
'''

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([OpenStackBackend], 'openstack_snapshot')


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r'''
module: snapshot
short_description: Take, revert, delete and prune snapshots on any supported provider
version_added: 0.1.0
description:
  - The provider-neutral face of this collection, for roles and job templates that should not care
    where a guest runs. O(provider) picks the backend; every other option means the same for every
    provider, and the result has the same schema.
  - Connection options of every provider are accepted, so one C(module_defaults) group
    (C(group/savepoint.virt.snapshot)) can serve all modules; the options of other providers are ignored.
  - Each provider's details (what it can and cannot do) are in its own module,
    M(savepoint.virt.libvirt_snapshot).
options:
  provider:
    description:
      - Which backend manages the guest.
    type: str
    required: true
    choices: [libvirt, openstack, vmware]
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
author:
  - savepoint.virt developers (@savepoint-virt)
'''

EXAMPLES = r'''
- name: Guarded change, whatever the guest runs on
  block:
    - name: Take a restore point
      savepoint.virt.snapshot:
        provider: libvirt
        name: web01
        snapshot_name: pre-patch
        expires_in: 2d

    - name: The change
      ansible.builtin.command: /usr/local/bin/patch-it
      changed_when: true

  rescue:
    - name: Revert when the change failed
      savepoint.virt.snapshot:
        provider: libvirt
        name: web01
        snapshot_name: pre-patch
        state: reverted

- name: Connection options once for every module of the collection
  module_defaults:
    group/savepoint.virt.snapshot:
      uri: qemu:///system
  block:
    - name: Snapshot a set of guests, all or nothing
      savepoint.virt.snapshot:
        provider: libvirt
        guests: [app01, app02, db01]
        snapshot_name: release-42
'''

RETURN = r'''
msg:
  description: What happened, in one sentence.
  returned: always
  type: str
  sample: "created snapshot 'pre-patch' of guest 'web01' (guest blocked 0.013s)"
action:
  description:
    - C(created), C(exists), C(deleted), C(absent), C(reverted), C(kept), C(started),
      or C(would ...) in check mode; null for several guests.
  returned: always
  type: str
guest:
  description: The guest (C(name), C(id), C(power_state)) when the task names one guest.
  returned: always
  type: dict
snapshot:
  description: The snapshot record affected, when the task names one guest (same keys as RV(results[].snapshot)).
  returned: always
  type: dict
results:
  description: One entry per guest.
  returned: always
  type: list
  elements: dict
  contains:
    guest:
      description: C(name), C(id) and C(power_state) of the guest.
      type: dict
    action:
      description: What was done on this guest.
      type: str
    changed:
      description: Whether this guest was changed.
      type: bool
    msg:
      description: What happened on this guest.
      type: str
    snapshot:
      description: The snapshot record, the same keys for every provider.
      type: dict
      contains:
        name:
          description: Snapshot name.
          type: str
        id:
          description: Provider id of the snapshot.
          type: str
        parent:
          description: Name of the parent snapshot.
          type: str
        children:
          description: Names of the child snapshots.
          type: list
          elements: str
        created_at:
          description: Creation time, ISO 8601 in UTC.
          type: str
        current:
          description: Whether it is the guest's current snapshot.
          type: bool
        power_state:
          description: Power state of the guest when it was taken.
          type: str
        memory:
          description: Whether it holds the guest's memory.
          type: bool
        quiesced:
          description: Whether the guest was quiesced; null when the provider does not record it.
          type: bool
        kind:
          description: C(internal) or C(external).
          type: str
        size_bytes:
          description: Space it uses; null when the provider cannot tell (never estimated).
          type: int
        description:
          description: The user's description (the ownership marker is split off).
          type: str
        owner:
          description: Owner from the ownership marker; null for snapshots this collection did not create.
          type: str
        expires_at:
          description: Expiry time, ISO 8601 in UTC, or null.
          type: str
    cost:
      description:
        - What the snapshot cost. C(guest_blocked_seconds) is the time the guest was paused or blocked
          while it was taken; C(size_bytes) the space it uses. Null where the provider cannot tell.
      type: dict
    operations:
      description: The provider operations started (C(action), C(id), C(done), C(seconds)).
      type: list
      elements: dict
    removed:
      description: Snapshots removed by O(state=pruned).
      type: list
      elements: dict
provider:
  description: The provider that ran the task.
  returned: always
  type: str
  sample: libvirt
progress:
  description: Progress lines written while waiting for long operations.
  returned: when a wait took long
  type: list
  elements: str
'''

from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for(BACKENDS, 'snapshot', neutral=True)


if __name__ == '__main__':
    main()

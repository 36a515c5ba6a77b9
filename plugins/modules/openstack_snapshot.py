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
  # ours first: on a clash the first fragment listed wins
  - savepoint.virt.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - savepoint.virt.guest
  - savepoint.virt.snapshot
  # every provider's connection options: accepted by every module, for module_defaults
  - savepoint.virt.openstack
  - savepoint.virt.openstack.snapshot_options
  - savepoint.virt.libvirt
  - savepoint.virt.vmware
  - savepoint.virt.module_defaults
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
# The same schema as savepoint.virt.snapshot (every provider returns the same keys);
# tests/release/test_module_docs.py keeps the two in step.
msg:
  description: What happened, in one sentence; on failure, what went wrong and what was done about it.
  returned: always
  type: str
  sample: "created snapshot 'pre-patch' of guest 'web01'"
provider:
  description: The provider that ran the task.
  returned: success
  type: str
  sample: openstack
action:
  description:
    - What was done when the task names one guest; null for several guests (see RV(results[].action)).
    - V(created), V(exists), V(deleted), V(absent), V(reverted), V(renamed), V(kept), V(started)
      (O(wait=false)), or V(would create), V(would delete), V(would revert), V(would rename) in check mode.
  returned: success
  type: str
  sample: created
guest:
  description: The guest, when the task names one guest (same keys as RV(results[].guest)); null otherwise.
  returned: success
  type: dict
  sample: {name: web01, id: 9b0f6c4e-6a1d-4a8e-9d35-2f6c7b1e0a44, power_state: running}
snapshot:
  description:
    - The snapshot record affected, when the task names one guest (same keys as RV(results[].snapshot));
      null otherwise.
  returned: success
  type: dict
results:
  description:
    - One entry per guest, in the order the task named them.
    - On failure (also of only some guests of a set) the entries say what was done on each guest,
      including the rollback of a set that could not be completed.
  returned: success, and on failure of some guests of a set (RV(error=partial_failure))
  type: list
  elements: dict
  contains:
    guest:
      description: The guest.
      type: dict
      contains:
        name:
          description: Name of the guest.
          type: str
        id:
          description: Provider id of the guest (libvirt UUID, VMware instance UUID, OpenStack server id).
          type: str
        power_state:
          description: Power state when the guest was looked at (V(running), V(paused), V(shutoff), ...).
          type: str
        provider_details:
          description:
            - What only this provider reports of the guest; empty for libvirt and OpenStack.
            - 'VMware: C(consolidation_needed) (vSphere''s C(runtime.consolidationNeeded)): a removal left delta
              disks that need consolidating (read after the task, so after any removal it made).'
          type: dict
    action:
      description: What was done on this guest (see RV(action)); V(failed) when it failed.
      type: str
    changed:
      description: Whether this guest was changed (false when its change was rolled back).
      type: bool
    msg:
      description: What happened on this guest.
      type: str
    snapshot:
      description: The snapshot record, the same keys for every provider; null when there is none.
      type: dict
      contains:
        name:
          description: Snapshot name.
          type: str
        id:
          description: Provider id of the snapshot.
          type: str
        parent:
          description: Name of the parent snapshot; null for a root.
          type: str
        parent_id:
          description: Provider id of the parent snapshot; null for a root.
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
          description: V(internal) or V(external).
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
        created_by:
          description:
            - Which module and collection version created it, from the ownership marker
              (for example V(savepoint.virt.snapshot 0.1.0)); null for snapshots this collection did not create.
          type: str
        expires_at:
          description: Expiry time, ISO 8601 in UTC, or null.
          type: str
        guest_blocked_seconds:
          description:
            - Seconds the guest was paused while this snapshot was taken, kept in the ownership marker where the
              provider shows it. Nova does not report it, so null (unknown) on OpenStack.
          type: float
        provider_details:
          description:
            - What only OpenStack reports - C(image_id) and C(image_name) (the Glance image of the server
              snapshot), C(include_volumes) and the Cinder volume snapshots taken with it.
            - The keys are not part of the stable interface; read them, do not branch on their absence.
          type: dict
    warnings:
      description: Warnings about this guest (also shown as task warnings), for example a O(quiesce=preferred) fallback.
      type: list
      elements: str
    cost:
      description: What the snapshot cost; null where the provider cannot tell.
      type: dict
      contains:
        guest_blocked_seconds:
          description: Seconds the guest was paused or blocked while the snapshot was taken.
          type: float
        size_bytes:
          description: Space the snapshot uses.
          type: int
    operations:
      description: The provider operations this task started on the guest.
      type: list
      elements: dict
      contains:
        action:
          description: V(create), V(revert), V(delete), V(rename) or V(consolidate).
          type: str
        id:
          description: Provider id of the operation (a vSphere task, an OpenStack image or request id) or of its object.
          type: str
        done:
          description: Whether it had finished when the task returned (false only with O(wait=false)).
          type: bool
        seconds:
          description: How long it took; null when it had not finished.
          type: float
    removed:
      description: The snapshot records removed, when more than one can be (O(state=pruned), O(remove_all), O(remove_children)).
      type: list
      elements: dict
    error:
      description: Why this guest failed; only on a failed guest.
      type: dict
      contains:
        msg:
          description: What went wrong on this guest.
          type: str
        error:
          description: The error class, see RV(error).
          type: str
        provider_message:
          description: The provider's own message, when it gave one.
          type: str
        error_details:
          description: Data about the failure, see RV(error_details).
          type: dict
    rollback:
      description:
        - What was done to undo this guest's part of a set that failed (O(all_or_nothing=true))
          - V(removed), V(nothing to remove), or V(FAILED) and the reason (then check the guest by hand).
      type: str
    rolled_back:
      description: Whether this guest's snapshot was removed again because another guest of the set failed.
      type: bool
error:
  description:
    - The error class on failure, the same for every provider, for C(failed_when) and C(rescue) logic.
    - V(invalid_request) (nothing was contacted or changed), V(missing_library), V(connection_failed),
      V(authentication_failed), V(certificate_verify_failed), V(guest_not_found), V(guest_ambiguous),
      V(snapshot_not_found), V(snapshot_ambiguous), V(snapshot_conflict), V(unsupported),
      V(quiesce_unavailable), V(timeout), V(provider_error), V(partial_failure) (some guests of a set failed).
  returned: failure
  type: str
  sample: snapshot_conflict
provider_message:
  description: The provider's own error message, when it gave one (never with credentials or URLs with user info).
  returned: failure, when the provider gave a message
  type: str
error_details:
  description:
    - Data about the failure, when there is any - for example C(existing) (the conflicting snapshot record),
      C(candidates) (guests of a similar or the same name), C(snapshots) (snapshots of the same name),
      C(timeout) and C(tasks) (a wait that ran out), C(hostname) and C(port) (a connection that failed).
  returned: failure, when there is data
  type: dict
diff:
  description: The snapshot tree before and after (predicted in check mode), as indented text.
  returned: with C(--diff)
  type: dict
  contains:
    before:
      description: The tree before the task.
      type: str
    after:
      description: The tree after the task.
      type: str
progress:
  description: Progress lines written while waiting for long operations (also in the module log).
  returned: when a wait took long
  type: list
  elements: str
  sample: ["still waiting for create of 'pre-patch' on guest 'web01' (30s of 600s)"]
'''

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for([OpenStackBackend], 'openstack_snapshot')


if __name__ == '__main__':
    main()

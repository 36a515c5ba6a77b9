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
  # ours first: on a clash the first fragment listed wins
  - savepoint.virt.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - savepoint.virt.guest
  - savepoint.virt.snapshot
  # every provider's connection options: accepted by every module, for module_defaults
  - savepoint.virt.libvirt
  - savepoint.virt.vmware
  - savepoint.virt.openstack
  - savepoint.virt.openstack.snapshot_options
  - savepoint.virt.module_defaults
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
  description: What happened, in one sentence; on failure, what went wrong and what was done about it.
  returned: always
  type: str
  sample: "created snapshot 'pre-patch' of guest 'web01' (guest blocked 0.013s)"
provider:
  description: The provider that ran the task.
  returned: success
  type: str
  sample: libvirt
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
  sample: {name: web01, id: 6695eb01-f6a4-8304-79aa-97f2502e193f, power_state: running}
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
            - Seconds the guest was paused while this snapshot was taken, measured when it was created and kept in
              the ownership marker (libvirt, where QEMU pauses a running guest for an internal snapshot). Null
              means unknown, never 0, for snapshots this collection did not take, and VMware and OpenStack, which
              do not report it.
          type: float
        provider_details:
          description:
            - What only this provider knows, as it reports it. libvirt - C(state) when taken and, for external
              snapshots, C(overlays) (the overlay files). VMware - C(state), C(snapshot_id), C(vm) (the
              managed object id). OpenStack - C(image_id), C(image_name), C(include_volumes) and the volume
              snapshots taken with it.
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

from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for(BACKENDS, 'snapshot', neutral=True)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # Options of every snapshot-changing module, whatever the provider.
    DOCUMENTATION = r'''
options:
  snapshot_name:
    description:
      - Name of the snapshot (the restore point). Required unless O(state=pruned) or O(remove_all=true);
        refused with O(state=pruned).
      - Snapshot names are compared exactly. A guest with two snapshots of this name is an error,
        never a guess.
    type: str
    aliases: [snapshot]
  state:
    description:
      - V(present) takes the snapshot unless one of that name exists. If it exists but was taken
        with other options (O(memory), O(kind), O(description), O(quiesce)), the task fails and
        nothing is changed.
      - V(absent) deletes the snapshot if it exists. Its children are kept (re-parented) unless
        O(remove_children=true).
      - V(reverted) brings the guest back to the snapshot. A revert is never skipped, because no
        provider can tell whether the guest changed since the snapshot became current, so it always
        reports C(changed).
      - V(pruned) deletes the snapshots this collection created for O(owner) that match the
        retention rule O(keep_last), O(older_than) or O(expired). Snapshots without this owner's
        marker are never touched.
    type: str
    choices: [present, absent, reverted, pruned]
    default: present
  description:
    description:
      - Free text stored with the snapshot (O(state=present) only). Trailing newlines and spaces are
        dropped when it is stored and compared, so a YAML block (C(|)) stays idempotent.
      - Not set or an empty string means no description.
    type: str
  memory:
    description:
      - Include the guest's memory (run state) in the snapshot.
      - When not set, the provider's natural choice is used (libvirt internal snapshots of a running
        guest always include memory; VMware does not).
      - Asking for memory where the provider or guest cannot provide it is an error, never silently
        dropped.
      - O(state=present) only.
      - C(memory_dump) is the name community.vmware's C(vmware_guest_snapshot) uses.
    type: bool
    aliases: [memory_dump]
  quiesce:
    description:
      - Whether guest file systems are quiesced through the guest agent / tools first.
      - V(required) fails (and changes nothing) when quiescing is not possible.
      - V(preferred) quiesces when possible and otherwise takes the snapshot without, with a
        warning saying why.
      - A boolean is accepted as community.vmware's C(vmware_guest_snapshot) means it, V(true) is
        V(required), V(false) is V(never).
      - O(state=present) only. When not set, V(never).
    type: raw
  snapshot_id:
    description:
      - Select the snapshot by the provider's id instead of O(snapshot_name) (for VMware its moref id such
        as V(snapshot-42), or the numeric id of C(provider_details.snapshot_id) that community.vmware calls
        C(snapshot_id); for libvirt the snapshot name; for OpenStack the image id).
      - With O(snapshot_name) too, the snapshot with this id must have that name, else the task fails.
      - O(state=absent), O(state=reverted), or O(state=present) with O(new_snapshot_name) or
        O(new_description) (the snapshot to rename). Not with O(remove_all).
    type: str
  new_snapshot_name:
    description:
      - Rename the snapshot named by O(snapshot_name) (or O(snapshot_id)) to this name. O(state=present) only.
      - A re-run finds the snapshot under its new name and reports V(exists); a name another snapshot of the
        guest already has is refused (names select snapshots).
      - Not together with the options that describe a new snapshot (O(description), O(memory), O(quiesce),
        O(kind), O(expires_in)). The ownership marker of the snapshot is kept.
      - Providers that cannot rename (libvirt, OpenStack) fail with C(error=unsupported) before anything is
        written.
    type: str
  new_description:
    description:
      - Give the snapshot named by O(snapshot_name) (or O(snapshot_id)) this description; with
        O(new_snapshot_name) or alone. An empty string clears it. O(state=present) only.
    type: str
  consolidate:
    description:
      - Consolidate the guest's disks after the removals of O(state=absent) or O(state=pruned).
      - V(auto) does it where the provider says the guest needs it (VMware's C(runtime.consolidationNeeded)),
        V(true) always, V(false) never. Providers without consolidation (libvirt, OpenStack) ignore V(auto)
        and refuse V(true) before anything is written.
      - The removals have happened when it runs, so a consolidation that fails is a warning on that guest, and
        its C(consolidation_needed) in RV(results[].guest.provider_details) says what is left.
      - When not set, V(auto). Needs O(wait=true) (nothing is consolidated otherwise).
    type: str
    choices: [auto, 'true', 'false']
  kind:
    description:
      - V(internal) snapshots live inside the disk images (libvirt qcow2) or the provider's native format.
      - V(external) snapshots are disk-only overlays (libvirt). Providers that cannot take them refuse.
      - O(state=present) only. When not set, V(internal).
    type: str
    choices: [internal, external]
  power_state:
    description:
      - Power state of the guest after O(state=reverted).
      - V(restore) leaves it as recorded in the snapshot (running with memory, off without);
        V(on) and V(off) force it. The module checks the result itself instead of trusting the
        provider.
      - O(state=reverted) only. When not set, V(restore).
    type: str
    choices: [restore, 'on', 'off']
  remove_children:
    description:
      - With O(state=absent), delete the snapshot's whole subtree instead of re-parenting its children.
      - O(state=absent) only. When not set, V(false).
    type: bool
  remove_all:
    description:
      - With O(state=absent) and no O(snapshot_name), delete every snapshot of the guest, whoever
        created it. Reports C(changed=false) when the guest has none.
      - O(state=absent) only. When not set, V(false).
    type: bool
  expires_in:
    description:
      - When the snapshot should expire, for example V(12h), V(7d), V(2w), V(1d12h), V(3600s).
        A unit is required; units are V(w), V(d), V(h), V(m), V(s), each at most once and in that
        order; at most 100 years.
      - Stored with the snapshot in the provider (see the README) and used by O(state=pruned) with
        O(expired=true). Snapshots cost space and slow guests down, so they should not live forever.
      - O(state=present) only. When not set, the snapshot does not expire.
    type: str
  owner:
    description:
      - Owner recorded in the ownership marker of snapshots this collection creates.
      - O(state=pruned) only selects snapshots carrying this owner.
      - O(state=present) and O(state=pruned) only. When not set, V(savepoint.virt). An empty string is an error.
    type: str
  keep_last:
    description:
      - With O(state=pruned), keep the newest N owned snapshots of each guest and remove older ones.
    type: int
  older_than:
    description:
      - With O(state=pruned), remove owned snapshots created longer ago than this duration (V(7d), V(36h)).
      - A unit is required, as for O(expires_in); a bare number is an error.
    type: str
  expired:
    description:
      - With O(state=pruned), remove owned snapshots whose expiry time has passed.
      - When not set, V(false).
    type: bool
  all_or_nothing:
    description:
      - With O(guests) and O(state=present), treat the guests as one snapshot set. If the snapshot
        fails on any guest, the snapshots just created on the others are removed again and the task fails.
      - O(state=present) only. When not set, V(true). (With O(state=reverted), every guest is always
        checked before any is reverted.)
    type: bool
  timeout:
    description:
      - Seconds to wait for the provider's operations, all guests together. Waiting never goes on
        forever; a timeout is an error that says which operations may still be running.
      - Between 1 and 604800 (a week). When not set, V(600).
    type: int
  parallel:
    description:
      - How many guests of a bulk task (O(guests)) are worked on at once, for every state; V(1) works on one
        guest after the other. The next guest starts as soon as one has finished (a sliding window, so one
        slow guest holds back no other); the snapshots removed from one guest go one after the other.
      - All guests share the one O(timeout); guests whose turn comes after it ran out are not started, and
        each says so. A snapshot set (O(all_or_nothing)) is still rolled back as a whole, and every guest is
        still reported.
      - With O(wait=false) the module still waits whenever O(parallel) guests are being worked on and more
        are to start, so that no more than O(parallel) are ever worked on at once; it returns once the last
        guest has started.
      - Between 1 and 1000. When not set, the provider's default, V(4) for libvirt (every live snapshot
        pauses its guest, and the guests share one host's disks), V(32) for VMware (vCenter queues tasks
        per host itself) and V(8) for OpenStack (each snapshot uploads a whole image to Glance).
    type: int
  wait:
    description:
      - Wait for the operations to finish. With V(false) the module returns at once with the
        provider's operation ids in C(results[].operations); not allowed for a snapshot set.
      - O(state=present), O(state=absent) and O(state=reverted) only. When not set, V(true).
    type: bool
notes:
  - An option set for a state it does not apply to (for example O(power_state) with O(state=present))
    is an error, never silently ignored; the option descriptions say which states each one applies to.
    This holds for options set through C(module_defaults) too, so set task options such as O(owner)
    per module, not for the whole C(group/savepoint.virt.snapshot).
  - An empty string in any option except O(description) is an error; leave the option unset for its default.
    Control characters (other than newlines in O(description)) are refused in every option.
  - Check mode is supported; nothing is written to the provider. With C(--diff) the snapshot tree
    before and after is shown.
'''

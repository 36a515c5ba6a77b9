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
      - Required unless every O(guests) entry names its own C(provider). With it set, every entry is
        that provider's (an entry naming another provider is an error). Without it, entries of several
        providers make one task across them (see O(guests)); the result's RV(provider) is then their names
        joined by C(+), and each guest's own provider is in RV(guests[].provider).
    type: str
    choices: [libvirt, openstack, vmware]
extends_documentation_fragment:
  # ours first: on a clash the first fragment listed wins
  - savepoint.virt.attributes.info
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - savepoint.virt.guest
  # every provider's connection options: accepted by every module, for module_defaults
  - savepoint.virt.libvirt
  - savepoint.virt.vmware
  - savepoint.virt.openstack
  - savepoint.virt.module_defaults
  - savepoint.virt.module_defaults.info
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
  description: One entry per guest (every guest the connection sees when the task names none).
  returned: success
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
          description: Provider id of the guest.
          type: str
        power_state:
          description: Power state of the guest now.
          type: str
        provider_details:
          description:
            - What only this provider reports of the guest; empty for libvirt and OpenStack.
            - 'VMware: C(consolidation_needed) (vSphere''s C(runtime.consolidationNeeded)): a removal left delta
              disks that need consolidating (read after the task, so after any removal it made).'
          type: dict
    provider:
      description:
        - The provider of this guest; with O(guests) entries of several providers (savepoint.virt.snapshot_info)
          each guest's own.
      type: str
    snapshots:
      description:
        - The guest's snapshot records, with the keys of RV(savepoint.virt.snapshot#module:results[].snapshot)
          (the same for every provider).
      type: list
      elements: dict
    current:
      description: Name of the current snapshot, or null.
      type: str
    tree:
      description: The snapshot tree as indented text, for humans.
      type: str
      sample: "pre-patch (memory)\n  post-patch (current, memory, expires 2026-12-03T10:00:00Z)\n"
snapshots:
  description: The snapshot records when exactly one guest was named; null otherwise.
  returned: success
  type: list
  elements: dict
msg:
  description: A one-line summary; on failure, what went wrong.
  returned: always
  type: str
  sample: 2 snapshots on 1 guest
provider:
  description: The provider that answered; for O(guests) entries of several providers their names joined by C(+).
  returned: success
  type: str
  sample: libvirt
error:
  description: The error class on failure, see RV(savepoint.virt.snapshot#module:error).
  returned: failure
  type: str
  sample: guest_not_found
provider_message:
  description: The provider's own error message, when it gave one.
  returned: failure, when the provider gave a message
  type: str
error_details:
  description: Data about the failure, when there is any (for example C(candidates), guests of a similar name).
  returned: failure, when there is data
  type: dict
'''

from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for(BACKENDS, 'snapshot_info', info=True, neutral=True)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # How a task names its guest(s); shared by every module.
    DOCUMENTATION = r'''
options:
  name:
    description:
      - Name of the guest (libvirt domain, VMware virtual machine, OpenStack server).
      - Matched exactly; a missing guest is an error that names the closest matches, an ambiguous
        name is an error that lists every match.
      - Mutually exclusive with O(uuid) and O(guests).
    type: str
    aliases: [guest]
  uuid:
    description:
      - UUID of the guest (libvirt domain UUID; VMware BIOS or instance UUID).
      - Mutually exclusive with O(name) and O(guests).
    type: str
  guests:
    description:
      - Several guests in one task. Each entry is a guest name, or a dict with one of
        C(name), C(uuid) (libvirt, VMware), C(moid) (VMware) or C(id)/C(server_id) (OpenStack server id),
        and C(folder) (VMware). A key the provider does not use is an error naming it.
      - 'An entry may carry C(provider): in M(savepoint.virt.snapshot) and M(savepoint.virt.snapshot_info)
        without their C(provider) option, entries of several providers make ONE task across them
        (for example C({provider: vmware, name: app01}) and C({provider: openstack, server_id: ...})),
        each provider''s connection options given once; a snapshot set is then all or nothing across the
        providers: a failed create on one removes what was taken on the others. A provider module takes
        entries of its own provider only.'
      - When snapshots are taken, the guests form a snapshot set (all or nothing, see C(all_or_nothing)).
      - Operations on different guests run side by side where the provider allows it.
    type: list
    elements: raw
'''

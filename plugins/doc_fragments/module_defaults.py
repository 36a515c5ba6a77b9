# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # What one module_defaults group (group/savepoint.virt.snapshot) may hold for every module.
    DOCUMENTATION = r'''
options: {}
notes:
  - Every module of this collection accepts the connection options of every provider (O(uri),
    O(hostname), O(cloud), ...), the provider guest options (O(moid), O(folder), O(server_id)) and
    O(include_volumes), so one C(module_defaults) group, C(group/savepoint.virt.snapshot), can set them
    for all modules at once. A module uses the connection options of its own provider and always
    ignores those of other providers. The info modules ignore O(include_volumes) (they create nothing).
  - Guest options a provider does not use (O(moid) for libvirt), O(include_volumes) set to true for
    another provider than OpenStack, and task options for a state they do not apply to are errors,
    wherever they are set.
'''

    # The info modules: options they accept only so that the group's module_defaults fit them.
    INFO = r'''
options:
  include_volumes:
    description:
      - Accepted and ignored, so that a C(group/savepoint.virt.snapshot) C(module_defaults) block that sets it
        for the snapshot modules also fits the info modules. Reading snapshots creates nothing.
    type: bool
    default: false
'''

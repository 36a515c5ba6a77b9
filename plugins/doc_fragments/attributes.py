# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module of this collection shares, written once.

Listed before ansible.builtin.action_common_attributes (and its .actiongroups), which
describe each attribute; these fragments only say how far our modules support them (the
first fragment listed wins a clash, so ours go first).
"""


class ModuleDocFragment:

    # Modules that change guests: check mode writes nothing, --diff shows the tree before/after.
    DOCUMENTATION = r'''
attributes:
  action_group: {support: full, membership: [savepoint.virt.snapshot]}
  check_mode: {support: full}
  diff_mode: {support: full}
  platform: {platforms: posix}
'''

    # The _info modules: they only read, so check mode is the same run and there is nothing to diff.
    INFO = r'''
attributes:
  action_group: {support: full, membership: [savepoint.virt.snapshot]}
  check_mode: {support: full, details: The module only reads; it runs the same in check mode.}
  diff_mode: {support: none}
  platform: {platforms: posix}
'''

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of savepoint.virt.libvirt_snapshot_info: live progress on the controller (see plugin_utils/live_progress.py)."""

from __future__ import annotations

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.savepoint.virt.plugins.plugin_utils.live_progress import SnapshotAction


class ActionModule(SnapshotAction):
    BACKENDS = (LibvirtBackend,)
    MODULE = 'libvirt_snapshot_info'
    INFO = True
    NEUTRAL = False

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of savepoint.virt.snapshot_info: live progress on the controller (see plugin_utils/live_progress.py)."""

from __future__ import annotations

from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS
from ansible_collections.savepoint.virt.plugins.plugin_utils.live_progress import SnapshotAction


class ActionModule(SnapshotAction):
    BACKENDS = BACKENDS
    MODULE = 'snapshot_info'
    INFO = True
    NEUTRAL = True

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VmwareBackend: the session, the lookups and the snapshot operations, waited for by the task waiter."""

from __future__ import annotations

from typing import List, Optional

from ..._errors import SavepointError
from ..._waiting import Operation, ProgressCallback, WaitPolicy, pending
from . import sdk
from .lease import VmwareLeases
from .snapshots import VmwareSnapshots
from .tasks import apply_task_state, mark_lost


class VmwareBackend(VmwareSnapshots, VmwareLeases):
    provider = 'vmware'
    guest_fields = ('name', 'uuid', 'id', 'folder')
    guest_options = ('moid', 'folder')

    def poll(self, operation: Operation) -> None:
        props = self._retrieve([operation.handle], sdk.vim.Task, ['info.state', 'info.error', 'info.result'],
                               'reading task %s' % operation.id)
        apply_task_state(operation, props.get(operation.id, {}))

    def wait(self, operations: List[Operation], policy: WaitPolicy,
             progress: Optional[ProgressCallback] = None, until_first: bool = False) -> None:
        """All tasks (and their follow-ups) through the property collector, under one deadline;
        ``until_first``: until one operation is complete (SnapshotBackend.wait)."""
        deadline = policy.clock() + policy.timeout
        waiting = [op.chain()[-1] for op in operations if not op.complete]
        while waiting:
            self._wait_tasks(pending(waiting), deadline, policy, progress, until_first)
            self._read_after([op for op in waiting if op.done])
            waiting = pending(waiting) + self.run_follow_ups(waiting)
            if until_first and any(op.complete for op in operations):
                return

    def _read_after(self, ops: List[Operation]) -> None:
        """One property retrieval for every guest whose task just ended well, instead of one per guest in
        the checks and read-backs that follow (a 1,000-guest task: 1 call per group, not 2,000).

        The properties count as fresh until this run starts its next write on the guest (``_start`` drops
        them). Best effort: when the bulk read fails, each guest is read on its own as before."""
        guests = {op.guest.id: op.guest for op in ops if op.done and op.error is None and op.handle is not None}
        if not guests or self._broken is not None:
            return
        # Only a create's check needs the tree (and the new snapshot's files); a removal, a revert or a
        # consolidation needs the power state and the consolidation flag (the tree is read if asked for).
        trees = any(op.action == 'create' for op in ops if op.guest.id in guests)
        try:
            found = self._read_vms([g.handle for g in guests.values()], 'reading %d guests after their tasks'
                                   % len(guests), trees=trees, have_snapshots=trees, again=True)
        except SavepointError:
            return
        for moid, props in found.items():
            if moid in guests:
                props['_fresh'] = True
                self._props[moid] = props

    def _wait_tasks(self, ops: List[Operation], deadline: float, policy: WaitPolicy,
                    progress: Optional[ProgressCallback], until_first: bool = False) -> None:
        if not ops:
            return
        if self._broken is not None:
            mark_lost(ops, ConnectionError('the connection broke earlier in this task: %s' % self._broken))
            return
        self._task_waiter().wait(ops, deadline, policy, progress, until_first)

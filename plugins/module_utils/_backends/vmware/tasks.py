# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for vSphere tasks: many at once, pushed by the property collector, under one deadline.

It stands alone (as vmware.vmware's ``_vsphere_tasks.py`` does): it knows tasks,
a property collector and ``Operation``s, not the backend. Unlike a poll loop per
task, all tasks of a run share one ``WaitForUpdatesEx`` stream, so twenty guests
cost what one costs.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

from ..._errors import ProviderError, WaitTimeoutError
from ..._waiting import Operation, ProgressCallback, WaitPolicy, pending
from . import sdk
from .sdk import NETWORK_ERRORS, fault_message, translate

#: longest single WaitForUpdatesEx call; the deadline is checked between calls
MAX_WAIT_SLICE = 10
#: seconds a WaitForUpdatesEx answer may take beyond its maxWaitSeconds before the server counts as gone
WAIT_SOCKET_MARGIN = 5
#: the task properties read; ``info.progress`` only makes the server push while a task runs
TASK_PATHS = ['info.state', 'info.error', 'info.result', 'info.progress']


def apply_task_state(op: Operation, values: Dict[str, Any]) -> None:
    """Finish ``op`` when the task's ``info.state`` says it ended (success or a translated fault)."""
    state = values.get('info.state')
    if isinstance(values.get('info.progress'), int):
        op.percent = values['info.progress']   # shown by the live progress of the action plugin
    if state == 'success':
        op.finish(result=values.get('info.result'))
    elif state == 'error':
        fault = values.get('info.error')
        doing = '%s of snapshot %s on guest %s (task %s)' % (op.action, op.snapshot_name, op.guest.name, op.id)
        op.finish(error=translate(fault, doing) if fault is not None else
                  ProviderError('%s failed without a reason' % doing))


def mark_lost(ops: List[Operation], exc: BaseException) -> None:
    """The server stopped answering while tasks ran: their outcome is unknown, and each says so."""
    for op in ops:
        if op.done:
            continue
        outcome = {'create': "the snapshot may have been created",
                   'delete': "the snapshot may have been deleted",
                   'rename': "the snapshot may have been renamed",
                   'consolidate': "the disks may have been consolidated",
                   'revert': "the guest may have been reverted"}.get(op.action, "the guest's power state may "
                                                                                "have changed")
        doing = ("waiting for task %s (%s of snapshot '%s' on guest '%s'); %s on the server: check the guest "
                 "before retrying" % (op.id, op.action, op.snapshot_name, op.guest.name, outcome))
        op.finish(error=translate(exc, doing, ProviderError))


class TaskWaiter:
    """Waits for the tasks of ``Operation``s (``op.handle`` is the ``vim.Task``) until each has ended.

    ``set_socket_timeout`` bounds the read timeout of the SOAP connection while a wait
    is outstanding and is called with ``idle_timeout`` afterwards; ``on_network_error``
    hears of a broken connection (the session then starts nothing more).
    """

    def __init__(self, property_collector: Any, set_socket_timeout: Callable[[float], None], idle_timeout: float,
                 on_network_error: Callable[[str], None]) -> None:
        self.property_collector = property_collector
        self.set_socket_timeout = set_socket_timeout
        self.idle_timeout = idle_timeout
        self.on_network_error = on_network_error

    def _failed(self, ops: List[Operation], exc: BaseException) -> None:
        if isinstance(exc, NETWORK_ERRORS):
            self.on_network_error(fault_message(exc))
        mark_lost(ops, exc)

    def _apply_read(self, spec: Any, by_id: Dict[str, Operation]) -> None:
        """One RetrievePropertiesEx of the tasks' states, applied to their operations."""
        pcq = sdk.vmodl.query.PropertyCollector
        result = self.property_collector.RetrievePropertiesEx([spec], pcq.RetrieveOptions())
        while result is not None:
            for item in result.objects or []:
                op = by_id.get(item.obj._moId)  # pylint: disable=protected-access
                if op is not None and not op.done:
                    apply_task_state(op, {p.name: p.val for p in item.propSet or []})
            if not result.token:
                break
            result = self.property_collector.ContinueRetrievePropertiesEx(result.token)

    def wait(self, ops: List[Operation], deadline: float, policy: WaitPolicy,
             progress: Optional[ProgressCallback] = None, until_first: bool = False) -> None:
        """Until every op is done (``until_first``: one of them) or ``deadline`` (a ``policy.clock()``
        value) has passed: WaitTimeoutError."""
        if not ops:
            return
        pcq = sdk.vmodl.query.PropertyCollector
        by_id = {op.id: op for op in ops}
        what = ', '.join(sorted('%s %s' % (op.action, op.guest.name) for op in ops))
        tasks = pcq.FilterSpec(objectSet=[pcq.ObjectSpec(obj=op.handle) for op in ops],
                               propSet=[pcq.PropertySpec(type=sdk.vim.Task, pathSet=TASK_PATHS)])
        try:
            # Tasks that have ended already need no collector of their own: one read of their states first
            # (one call instead of four; vcsim ends every task inside its call, vCenter the quick ones).
            self._apply_read(tasks, by_id)
        except Exception as exc:  # every fault and network error ends these tasks' wait with a clear error
            self._failed(ops, exc)
            return
        if not pending(ops) or (until_first and any(op.done for op in ops)):
            return
        try:
            # A collector of our own: its filter and update versions cannot mix with anyone else's.
            pc = self.property_collector.CreatePropertyCollector()
            pc.CreateFilter(tasks, True)
        except Exception as exc:  # every fault and network error ends these tasks' wait with a clear error
            self._failed(ops, exc)
            return
        start = last_report = policy.clock()
        version = ''
        try:
            while pending(ops) and not (until_first and any(op.done for op in ops)):
                now = policy.clock()
                if now >= deadline:
                    raise WaitTimeoutError('timed out after %ds waiting for %s' % (policy.timeout, what),
                                           details={'timeout': policy.timeout, 'tasks': sorted(by_id)})
                if progress is not None and now - last_report >= policy.progress_every:
                    progress('still waiting for %s (%ds of %ds)' % (
                        ', '.join(sorted('%s %s' % (o.action, o.guest.name) for o in pending(ops))),
                        now - start, policy.timeout))
                    last_report = now
                wait = max(1, min(MAX_WAIT_SLICE, int(math.ceil(deadline - now)), int(policy.progress_every)))
                try:
                    # A frozen server must not hold the wait past its deadline for a whole socket timeout.
                    self.set_socket_timeout(wait + WAIT_SOCKET_MARGIN)
                    update = pc.WaitForUpdatesEx(version, pcq.WaitOptions(maxWaitSeconds=wait))
                except Exception as exc:  # every fault and network error: the outcome is unknown
                    self._failed(pending(ops), exc)
                    return
                if update is None:
                    continue
                version = update.version
                for filter_set in update.filterSet or []:
                    for obj in filter_set.objectSet or []:
                        op = by_id.get(obj.obj._moId)  # pylint: disable=protected-access
                        if op is None or op.done:
                            continue
                        apply_task_state(op, {change.name: change.val for change in obj.changeSet or []})
        finally:
            self.set_socket_timeout(self.idle_timeout)
            try:
                pc.DestroyPropertyCollector()
            except Exception:  # the collector dies with the session anyway
                pass

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk consolidation after removals (``consolidate: auto|true|false``), for providers that have it.

``auto`` consolidates where the provider says the guest needs it after the removals
(VMware: ``runtime.consolidationNeeded``), ``true`` always, ``false`` never. The removals
have happened when this runs, so a consolidation that fails is a warning on that guest
(its ``consolidation_needed`` then says what is left), never a failure that would hide
the removals' ``changed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from . import _window
from ._errors import SavepointError, UnsupportedError
from ._waiting import Operation

if TYPE_CHECKING:  # pragma: no cover - for type checkers only (the engine imports this module)
    from ._engine import SnapshotEngine
    from ._request import GuestPlan, Request

CHOICES = ('auto', 'true', 'false')


def check(request: 'Request', plans: List['GuestPlan'], provider: str) -> None:
    """Decide phase: ``consolidate: true`` where the provider cannot is refused before anything is written."""
    if request.consolidate != 'true':
        return
    for plan in plans:
        if plan.action == 'delete' and not plan.capabilities.consolidate:
            raise UnsupportedError(plan.capabilities.why_not(
                'consolidate', '%s has no disk consolidation (guest %s); leave consolidate unset'
                % (plan.guest.provider or provider, plan.guest.name)))


def run(engine: 'SnapshotEngine', request: 'Request', active: List['GuestPlan']) -> None:
    """Act phase, after the removals were waited for: start and wait for the consolidations, at most
    ``parallel`` guests at a time (a sliding window, like the removals), all under one timeout."""
    if request.consolidate == 'false' or not request.wait:
        return
    due = [plan for plan in active
           if plan.action == 'delete' and plan.error is None and plan.capabilities.consolidate]
    limit = engine._parallel(request)  # pylint: disable=protected-access
    deadline = engine.policy.clock() + engine.policy.timeout

    def start(plan: 'GuestPlan', _index: int) -> Optional[Operation]:
        try:
            op = engine.backend.start_consolidate(plan.guest, request.consolidate == 'true')
        except SavepointError as exc:
            plan.warnings.append("guest '%s': the snapshots were removed, but consolidating its disks failed: %s"
                                 % (plan.guest.name, exc.msg))
            return None
        except Exception as exc:  # pylint: disable=broad-except  # the removals are reported all the same
            plan.warnings.append("guest '%s': the snapshots were removed, but consolidating its disks failed: "
                                 "%s: %s" % (plan.guest.name, type(exc).__name__, str(exc)[:300]))
            return None
        if op is not None:
            plan.operations.append(op)
        return op

    def finished(plan: 'GuestPlan', _index: int, op: Operation) -> bool:
        error = op.final_error
        if error is not None:
            plan.warnings.append("guest '%s': the snapshots were removed, but consolidating its disks failed: %s"
                                 % (plan.guest.name, error.msg))
        else:
            plan.reasons.append('disks consolidated')
        return True

    def not_started(plan: 'GuestPlan', _index: int) -> None:
        plan.warnings.append("guest '%s': the snapshots were removed, but its disks were not consolidated: "
                             "the timeout ran out before its turn" % plan.guest.name)

    _window.slide(due, limit, deadline, engine.policy.clock, start,
                  lambda ops, until_first: engine._wait(ops, deadline, until_first),  # pylint: disable=protected-access
                  finished, not_started)

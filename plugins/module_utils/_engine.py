# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider-neutral snapshot engine.

Every request runs in the same three phases, for one guest or many:

1. look: find the guests, read their snapshot trees and capabilities;
2. decide: validate everything and plan the writes -- any error here
   leaves every guest untouched (bad input never half-applies);
3. act: start all writes, wait for them together under one deadline,
   roll back a snapshot set that did not fully succeed, and report.

Check mode stops after phase 2 and reports the plan.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._backend import SnapshotBackend
from ._errors import (
    InvalidRequestError, ProviderError, QuiesceUnavailableError, SavepointError, SnapshotConflictError,
    SnapshotNotFoundError, UnsupportedError, WaitTimeoutError,
)
from ._model import Guest, GuestRef, SnapshotRecord, SnapshotSpec, descendants, render_tree, utcnow
from . import _consolidate, _rename, _window
from ._locking import keeper_for
from ._options import STATES, parallel_default
from ._request import GuestPlan, Request, conflicts, find_by_name, marker_warnings, unexpected_error
from ._results import ResultBuilder
from ._retention import RetentionRule, select_for_removal
from ._waiting import Operation, WaitPolicy

# Request and GuestPlan live in _request; callers import them from here
__all__ = ['STATES', 'GuestPlan', 'Request', 'SnapshotEngine', 'find_by_name', 'unexpected_error']


class SnapshotEngine(ResultBuilder):
    """Runs a Request against one backend and returns the one result schema (built by ResultBuilder)."""

    def __init__(self, backend: SnapshotBackend, check_mode: bool = False, diff: bool = False,
                 wait_policy: Optional[WaitPolicy] = None, progress: Optional[Callable[[str], None]] = None,
                 now: Optional[Callable[[], datetime.datetime]] = None) -> None:
        self.backend = backend
        self.check_mode = check_mode
        self.diff = diff
        self.policy = wait_policy or WaitPolicy()
        self.progress = progress
        self.now = now or utcnow
        self.leases = keeper_for(backend, self.policy.timeout, check_mode, progress)

    # -- public entry points -------------------------------------------------
    def run(self, request: Request) -> Dict[str, Any]:
        request.validate()
        guests = self._find(request)
        # One run per guest from reading the trees to reading them back (_locking.py).
        self.leases = keeper_for(self.backend, self.policy.timeout, self.check_mode, self.progress,
                                 'state=%s' % request.state)
        with self.leases.hold(guests):
            plans = self._look(request, guests)
            decide = getattr(self, '_decide_%s' % request.state)
            for plan in plans:
                decide(request, plan)
            _consolidate.check(request, plans, self.backend.provider)
            if not self.check_mode:
                self._act(request, plans)
            result = self._result(request, plans)
        result['warnings'] = self.leases.warnings + result['warnings']
        return result

    def info(self, refs: Optional[List[GuestRef]] = None) -> Dict[str, Any]:
        guests = self.backend.find_guests(refs) if refs else self.backend.list_guests()
        reports = []
        warnings: List[str] = []
        for guest in guests:
            snapshots = self.backend.list_snapshots(guest)
            warnings.extend(marker_warnings(guest, snapshots))
            reports.append({'guest': guest.to_dict(), 'provider': guest.provider or self.backend.provider,
                            'snapshots': [s.to_dict() for s in snapshots],
                            'current': next((s.name for s in snapshots if s.current), None),
                            'tree': render_tree(snapshots)})
        count = sum(len(r['snapshots']) for r in reports)
        return {'changed': False, 'provider': self.backend.provider, 'guests': reports, 'warnings': warnings,
                'snapshots': reports[0]['snapshots'] if refs and len(reports) == 1 else None,
                'msg': '%d snapshot%s on %d guest%s' % (count, '' if count == 1 else 's',
                                                        len(reports), '' if len(reports) == 1 else 's')}

    def _provider(self, plan: GuestPlan) -> str:
        """The provider of one guest, for messages (a guest of a set across providers carries its own)."""
        return plan.guest.provider or self.backend.provider

    # -- phase 1: look ---------------------------------------------------------
    def _find(self, request: Request) -> List[Guest]:
        guests = self.backend.find_guests(request.guests)
        seen: Dict[str, Guest] = {}
        for guest in guests:
            if guest.id in seen:
                raise InvalidRequestError("guest '%s' (id %s) is named twice in one request" % (guest.name, guest.id))
            seen[guest.id] = guest
        return guests

    def _look(self, request: Request, guests: List[Guest]) -> List[GuestPlan]:
        plans = [GuestPlan(guest=g, snapshots=self.backend.list_snapshots(g),
                           capabilities=self.backend.capabilities(g)) for g in guests]
        for plan in plans:
            plan.warnings.extend(marker_warnings(plan.guest, plan.snapshots))
        return plans

    # -- phase 2: decide (no writes) -------------------------------------------
    def _decide_present(self, request: Request, plan: GuestPlan) -> None:
        if request.renames:
            _rename.decide(request, plan, find_by_name, self._provider(plan))
            return
        spec = request.spec or SnapshotSpec(name=request.snapshot_name or '')
        existing = find_by_name(plan.snapshots, spec.name, plan.guest)
        if existing is not None:
            differences = conflicts(existing, spec) + self.backend.option_conflicts(existing, spec)
            if differences:
                raise SnapshotConflictError(
                    "guest '%s' already has a snapshot '%s' that differs from this request: %s; "
                    "use another snapshot_name or remove the existing one first"
                    % (plan.guest.name, spec.name, '; '.join(differences)),
                    details={'existing': existing.to_dict()})
            plan.existing = existing
            plan.outcome = 'exists'
            plan.warnings.extend(self._existing_warnings(request, plan.guest, existing))
            return
        caps = plan.capabilities
        provider = self._provider(plan)
        if spec.kind == 'external' and not caps.external:
            raise UnsupportedError(caps.why_not('external', '%s cannot take external snapshots' % provider))
        if spec.kind == 'internal' and not caps.internal:
            raise UnsupportedError(caps.why_not('internal', '%s cannot take internal snapshots of this guest'
                                                % provider))
        if spec.memory and not caps.memory:
            raise UnsupportedError(caps.why_not('memory', '%s cannot include memory in snapshots of guest %s'
                                                % (provider, plan.guest.name)))
        if spec.quiesce != 'never' and not caps.quiesce:
            why = caps.why_not('quiesce', 'quiescing is not available for guest %s' % plan.guest.name)
            if spec.quiesce == 'required':
                raise QuiesceUnavailableError('quiesce: required cannot be honoured: %s' % why)
            plan.warnings.append("guest '%s': quiesce: preferred fell back to a snapshot without quiescing: %s"
                                 % (plan.guest.name, why))
            spec = dataclasses.replace(spec, quiesce='never')
        plan.spec = self.backend.prepare_spec(plan.guest, spec, plan.warnings)
        plan.action = 'create'

    def _existing_warnings(self, request: Request, guest: Guest, existing: SnapshotRecord) -> List[str]:
        """An existing snapshot counts as the one asked for, but say when it is not what a user assumes."""
        found: List[str] = []
        marker = request.spec.marker if request.spec is not None else None
        if marker is None:   # nothing asked about ownership: nothing to compare
            return found
        owner = marker.owner
        if not existing.owned:
            found.append("guest '%s': snapshot '%s' already exists but was not created by savepoint.virt (no "
                         "ownership marker): reported as exists; state=pruned will never remove it"
                         % (guest.name, existing.name))
        elif existing.owner != owner:
            found.append("guest '%s': snapshot '%s' already exists but belongs to owner '%s', not '%s': reported "
                         "as exists; its expiry and owner were not changed"
                         % (guest.name, existing.name, existing.owner, owner))
        expires = existing.expires_datetime()
        if expires is not None and expires <= self.now():
            found.append("guest '%s': snapshot '%s' already exists but expired at %s: reported as exists; "
                         "state=pruned with expired: true will remove it" % (guest.name, existing.name,
                                                                             existing.expires_at))
        return found

    def _decide_absent(self, request: Request, plan: GuestPlan) -> None:
        if request.remove_all:
            self._decide_remove_all(plan)
            return
        snap = _rename.select(plan.snapshots, request, plan.guest, find_by_name)
        if snap is None:
            plan.outcome = 'absent'
            return
        kids = descendants(plan.snapshots, snap)
        if request.remove_children and kids and not plan.capabilities.delete_children:
            raise UnsupportedError(plan.capabilities.why_not(
                'delete_children', '%s cannot delete a snapshot together with its children'
                % self._provider(plan)))
        plan.action = 'delete'
        plan.targets = [snap]
        if kids and request.remove_children:
            plan.reasons.append('with %d descendant%s: %s' % (len(kids), '' if len(kids) == 1 else 's',
                                                              ', '.join(k.name for k in kids)))

    def _decide_remove_all(self, plan: GuestPlan) -> None:
        if not plan.snapshots:
            plan.outcome = 'absent'
            return
        ids = {s.id for s in plan.snapshots}
        roots = [s for s in plan.snapshots if s.parent_id not in ids]
        if len(plan.snapshots) > len(roots) and not plan.capabilities.delete_children:
            raise UnsupportedError(plan.capabilities.why_not(
                'delete_children', '%s cannot delete a snapshot together with its children'
                % self._provider(plan)))
        plan.action = 'delete'
        plan.targets = roots
        plan.reasons.append('all %d snapshot%s: %s' % (len(plan.snapshots), '' if len(plan.snapshots) == 1 else 's',
                                                       ', '.join(s.name for s in plan.snapshots)))

    def _decide_reverted(self, request: Request, plan: GuestPlan) -> None:
        snap = _rename.select(plan.snapshots, request, plan.guest, find_by_name)
        if snap is None:
            names = ', '.join(s.name for s in plan.snapshots) or 'none'
            raise SnapshotNotFoundError("guest '%s' has no %s to revert to (it has: %s)"
                                        % (plan.guest.name, _rename.what_is_asked(request), names))
        caps = plan.capabilities
        if not caps.revert:
            raise UnsupportedError(caps.why_not('revert', '%s cannot revert guest %s'
                                                % (self._provider(plan), plan.guest.name)))
        if snap.kind == 'external' and not caps.revert_external:
            raise UnsupportedError(caps.why_not('revert_external', '%s cannot revert to external snapshots'
                                                % self._provider(plan)))
        self.backend.prepare_revert(plan.guest, snap)
        plan.action = 'revert'
        plan.targets = [snap]
        if snap.current:
            # A provider cannot tell whether the guest changed since this
            # snapshot became current, so a revert is never skipped.
            plan.reasons.append('it was the current snapshot; reverted anyway, as the guest may have '
                                'changed since')

    def _decide_pruned(self, request: Request, plan: GuestPlan) -> None:
        owner = request.owner or ''
        selected = select_for_removal(plan.snapshots, owner, request.retention or RetentionRule(), self.now())
        if not selected:
            plan.outcome = 'kept'
            return
        plan.action = 'delete'
        plan.targets = [entry['snapshot'] for entry in selected]
        plan.reasons.extend('%s: %s' % (entry['snapshot'].name, entry['reason']) for entry in selected)

    # -- phase 3: act ------------------------------------------------------------
    def _parallel(self, request: Request) -> int:
        return request.parallel or parallel_default(self.backend.provider)

    def _act(self, request: Request, plans: List[GuestPlan]) -> None:
        active = [p for p in plans if p.action != 'none']
        # One snapshot write per guest at a time (providers refuse or serialise concurrent
        # snapshot tasks on one guest); guests run side by side, at most ``parallel`` at once,
        # the next one started as soon as one finishes (_window.py), all under one deadline.
        limit = self._parallel(request)

        def start_many(jobs: List[Tuple[GuestPlan, int]]) -> List[Optional[Operation]]:
            ops = self._start_many(request, jobs, deadline, limit)
            for (plan, _index), op in zip(jobs, ops):
                if op is not None:
                    plan.operations.append(op)
            return ops

        def start(plan: GuestPlan, index: int) -> Optional[Operation]:
            return start_many([(plan, index)])[0]

        def finished(plan: GuestPlan, _index: int, op: Operation) -> bool:
            plan.error = op.final_error
            return plan.error is None

        deadline = self.policy.clock() + self.policy.timeout
        _window.slide(active, limit, deadline, self.policy.clock, start,
                      lambda ops, until_first: self._wait(ops, deadline, until_first), finished,
                      lambda plan, index: self._not_started(request, plan, index, limit),
                      steps=lambda plan: len(plan.targets) if plan.action == 'delete' else 1,
                      # wait: false still waits whenever the window is full, or more than
                      # ``parallel`` guests would be worked on at once
                      wait_for_last=request.wait,
                      new_round=lambda _index: self.leases.renew(),
                      start_many=start_many if self.backend.starts_together else None)
        for plan in active:   # wait: false: what the provider finished (or failed) before returning counts
            if plan.error is None and plan.operations:
                plan.error = plan.operations[-1].final_error
        _consolidate.run(self, request, active)
        # Read back what finished: everything when waited for, and what the provider finished
        # before returning (libvirt is synchronous) when not.
        self._read_back(request, [p for p in active
                                  if request.wait or (p.operations and all(op.complete for op in p.operations))])
        failed = [p for p in active if p.error is not None]
        if failed and request.state == 'present' and request.all_or_nothing and len(plans) > 1:
            self._roll_back(request, [p for p in active if p.action == 'create'])
            raise self._partial_failure(request, plans, failed, rolled_back=True)
        if failed:
            raise self._partial_failure(request, plans, failed, rolled_back=False)
        for plan in active:
            plan.outcome = {'create': 'created', 'delete': 'deleted', 'revert': 'reverted',
                            'rename': 'renamed'}[plan.action]
            if not request.wait:
                if not (plan.operations and all(op.complete for op in plan.operations)):
                    plan.outcome = 'started'
                # else: the provider finished before returning (libvirt is synchronous), and says so

    def _read_back(self, request: Request, active: List[GuestPlan]) -> None:
        """Read the trees back where needed; a create the provider does not show is a failure."""
        for plan in active:
            if plan.error is not None:
                continue
            made = plan.operations[-1].result if plan.operations else None
            made = made if isinstance(made, SnapshotRecord) else None
            try:
                if plan.action in ('revert', 'delete'):
                    # The result reports the guest as it is after the act, read from the provider (the
                    # power state after a revert; whether its disks need consolidating after removals).
                    plan.guest = self.backend.refresh_guest(plan.guest)
                if self.diff or (plan.action == 'create' and made is None) or plan.action == 'rename':
                    plan.after = self.backend.list_snapshots(plan.guest)
                if plan.action == 'rename':
                    plan.created = _rename.read_back(request, plan, plan.after or [], self._provider(plan))
                if plan.action == 'create':
                    plan.created = made or find_by_name(plan.after or [], request.snapshot_name or '', plan.guest)
                    if plan.created is None:
                        raise ProviderError("%s reported snapshot '%s' of guest '%s' as created, but it is not "
                                            "there" % (self._provider(plan), request.snapshot_name, plan.guest.name))
            except SavepointError as exc:
                plan.error = exc
            except Exception as exc:  # pylint: disable=broad-except  # reported per guest, set rolled back
                plan.error = unexpected_error(exc, "reading back guest '%s'" % plan.guest.name)

    def _start_many(self, request: Request, jobs: List[Tuple[GuestPlan, int]], deadline: float,
                    limit: int) -> List[Optional[Operation]]:
        """The steps a sliding window starts at once, handed to the backend together (start_together)."""
        def step(plan: GuestPlan, index: int) -> Optional[Operation]:
            if self.policy.clock() >= deadline:   # the starts before it in the group took the time
                self._not_started(request, plan, index, limit)
                return None
            return self._start_step(request, plan, index)
        outcomes = self.backend.start_together([functools.partial(step, plan, index) for plan, index in jobs])
        return [self._started(request, plan, index, outcome) for (plan, index), outcome in zip(jobs, outcomes)]

    def _start_step(self, request: Request, plan: GuestPlan, index: int) -> Operation:
        if plan.action == 'create':
            if plan.spec is None:
                raise InvalidRequestError('internal error: a create without a snapshot specification')
            return self.backend.start_create(plan.guest, plan.spec)
        if plan.action == 'revert':
            return self.backend.start_revert(plan.guest, plan.targets[0], request.power_state)
        if plan.action == 'rename':
            return self.backend.start_rename(plan.guest, plan.targets[0], request.new_name,
                                             request.new_description)
        remove_children = (request.remove_children or request.remove_all) and request.state == 'absent'
        return self.backend.start_delete(plan.guest, plan.targets[index], remove_children)

    def _started(self, request: Request, plan: GuestPlan, index: int, outcome: Any) -> Optional[Operation]:
        """A start's outcome (its operation, or the exception it ended with) recorded on its plan."""
        if isinstance(outcome, SavepointError):
            plan.error = outcome
        elif isinstance(outcome, Exception):   # reported per guest, set rolled back
            plan.error = unexpected_error(outcome, "starting %s of snapshot '%s' on guest '%s'"
                                          % (plan.action, request.snapshot_name or plan.targets[index].name
                                             if plan.targets else request.snapshot_name, plan.guest.name))
        else:
            return outcome
        return None

    def _not_started(self, request: Request, plan: GuestPlan, index: int, limit: int) -> None:
        """The deadline passed before this guest's turn: nothing was written to it for this step, and it says so."""
        name = plan.targets[index].name if plan.action == 'delete' else (
            request.snapshot_name or (plan.targets[0].name if plan.targets else ''))
        plan.error = WaitTimeoutError(
            "%s of snapshot '%s' on guest '%s' was not started: the timeout of %ds ran out while the guests "
            "before it were worked on (parallel=%d); nothing was written to this guest for it"
            % (plan.action, name, plan.guest.name, self.policy.timeout, limit),
            details={'timeout': self.policy.timeout, 'parallel': limit})

    def _wait(self, operations: List[Operation], deadline: Optional[float] = None, until_first: bool = False) -> None:
        """Wait for ``operations`` until ``deadline`` (a policy clock value; None: a whole timeout from now);
        ``until_first``: only until one of them is complete (the sliding window starts the next guest)."""
        if not operations:
            return
        policy = self.policy
        if deadline is not None:
            policy = dataclasses.replace(policy, timeout=max(0.0, deadline - policy.clock()))
        try:
            if until_first:
                self.backend.wait(operations, policy, self.progress, until_first=True)
            else:   # the interface's first form: every backend and wrapper takes it
                self.backend.wait(operations, policy, self.progress)
        except WaitTimeoutError as exc:
            for op in operations:
                for step in op.chain():
                    if not step.done:
                        step.error = WaitTimeoutError(
                            '%s of snapshot %s on guest %s did not finish within %ds; it may still be '
                            'running on the provider: check before retrying'
                            % (step.action, step.snapshot_name, step.guest.name, self.policy.timeout),
                            provider_message=exc.msg)
        except Exception as exc:  # pylint: disable=broad-except  # every unfinished step fails, none is lost
            error = exc if isinstance(exc, SavepointError) else unexpected_error(exc, 'waiting for the provider')
            for op in operations:
                for step in op.chain():
                    if not step.done or step.follow_up is not None:
                        step.error = type(error)(
                            "%s of snapshot '%s' on guest '%s' may not have finished: %s"
                            % (step.action, step.snapshot_name, step.guest.name, error.msg),
                            provider_message=error.provider_message)
                        step.done = True

    def _roll_back(self, request: Request, creates: List[GuestPlan]) -> None:
        """Remove what a failed set created, so no guest keeps half a set.

        Every guest of the set is checked, the failed ones too: a create cut off
        by a lost connection may still have happened. What cannot be checked is
        said so, never assumed.
        """
        ops: List[Tuple[GuestPlan, Operation]] = []
        try:
            self.leases.renew()   # the rollback gets a timeout of its own: the leases must outlast it
        except Exception as exc:  # pylint: disable=broad-except  # removing the half set matters more
            self.leases.warnings.append('could not renew the leases before rolling back: %s' % exc)
        limit = self._parallel(request)
        # The rollback gets a whole timeout of its own (the act may have used up its deadline), and
        # is bounded by ``parallel`` like the creates it undoes (a sliding window as well).
        deadline = self.policy.clock() + self.policy.timeout

        def remove(plan: GuestPlan) -> Optional[Operation]:
            if self.policy.clock() >= deadline:   # the starts before it in the group took the time
                not_started(plan, 0)
                return None
            snap = find_by_name(self.backend.list_snapshots(plan.guest), request.snapshot_name or '', plan.guest)
            if snap is None:
                plan.rollback = 'nothing to remove'
                return None
            return self.backend.start_delete(plan.guest, snap, False)

        def start_many(jobs: List[Tuple[GuestPlan, int]]) -> List[Optional[Operation]]:
            outcomes = self.backend.start_together([functools.partial(remove, plan) for plan, _index in jobs])
            started: List[Optional[Operation]] = []
            for (plan, _index), outcome in zip(jobs, outcomes):
                if isinstance(outcome, SavepointError):
                    plan.rollback = 'FAILED: %s' % outcome.msg
                    outcome = None
                elif isinstance(outcome, Exception):   # the other guests are still rolled back
                    plan.rollback = 'FAILED: %s' % unexpected_error(outcome, 'rolling back').msg
                    outcome = None
                if outcome is not None:
                    ops.append((plan, outcome))
                started.append(outcome)
            return started

        def not_started(plan: GuestPlan, _index: int) -> None:
            plan.rollback = ('FAILED: not started: the timeout of %ds ran out while the guests before it were '
                             'rolled back (parallel=%d); remove the snapshot by hand' % (self.policy.timeout, limit))

        def start(plan: GuestPlan, index: int) -> Optional[Operation]:
            return start_many([(plan, index)])[0]

        _window.slide(creates, limit, deadline, self.policy.clock, start,
                      lambda started, until_first: self._wait(started, deadline, until_first),
                      lambda _plan, _index, _op: True, not_started,
                      start_many=start_many if self.backend.starts_together else None)
        for plan, op in ops:
            if op.final_error is not None:
                plan.rollback = 'FAILED: %s' % op.final_error.msg
            else:
                plan.rollback = 'removed'
                plan.rolled_back = True

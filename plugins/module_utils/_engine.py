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
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ._backend import SnapshotBackend
from ._errors import (
    AmbiguousSnapshotError, InvalidRequestError, PartialFailureError, ProviderError, QuiesceUnavailableError,
    SavepointError, SnapshotConflictError, SnapshotNotFoundError, UnsupportedError, WaitTimeoutError,
)
from ._model import (
    POWER_AFTER_REVERT, Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec, descendants, render_tree,
    utcnow,
)
from ._locking import LeaseKeeper
from ._retention import RetentionRule, select_for_removal
from ._waiting import Operation, WaitPolicy

STATES = ('present', 'absent', 'reverted', 'pruned')


@dataclass
class Request:
    state: str
    guests: List[GuestRef]
    snapshot_name: Optional[str] = None
    spec: Optional[SnapshotSpec] = None
    power_state: str = 'restore'
    remove_children: bool = False
    remove_all: bool = False
    all_or_nothing: bool = True
    wait: bool = True
    retention: Optional[RetentionRule] = None
    owner: Optional[str] = None

    def validate(self) -> None:
        if self.state not in STATES:
            raise InvalidRequestError('state must be one of %s' % ', '.join(STATES))
        if not self.guests:
            raise InvalidRequestError('name at least one guest (name, uuid, id or guests)')
        for ref in self.guests:
            ref.validate()
        if self.remove_all and (self.state != 'absent' or self.snapshot_name):
            raise InvalidRequestError('remove_all goes with state=absent and no snapshot_name')
        if self.state in ('present', 'absent', 'reverted') and not self.snapshot_name and not self.remove_all:
            raise InvalidRequestError('state=%s needs snapshot_name' % self.state)
        if self.state == 'present':
            if self.spec is None:
                raise InvalidRequestError('state=present needs a snapshot specification')
            self.spec.validate()
        if self.state == 'pruned' and self.retention is None:
            raise InvalidRequestError('state=pruned needs a retention rule')
        if self.power_state not in POWER_AFTER_REVERT:
            raise InvalidRequestError('power_state must be one of %s' % ', '.join(POWER_AFTER_REVERT))
        if not self.wait and (self.state == 'pruned' or self.remove_all):
            raise InvalidRequestError('wait: false cannot be used with %s: snapshots of one guest are removed one '
                                      'after the other' % ('state=pruned' if self.state == 'pruned' else 'remove_all'))
        if not self.wait and len(self.guests) > 1 and self.all_or_nothing and self.state == 'present':
            raise InvalidRequestError('wait: false cannot roll back a snapshot set; '
                                      'use wait: true or all_or_nothing: false')


@dataclass
class GuestPlan:
    """What the engine found and decided for one guest."""

    guest: Guest
    snapshots: List[SnapshotRecord]
    capabilities: Capabilities
    action: str = 'none'                     # create | delete | revert | none
    targets: List[SnapshotRecord] = field(default_factory=list)
    spec: Optional[SnapshotSpec] = None
    existing: Optional[SnapshotRecord] = None
    reasons: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    operations: List[Operation] = field(default_factory=list)
    outcome: str = ''
    error: Optional[SavepointError] = None
    rolled_back: bool = False
    rollback: str = ''
    after: Optional[List[SnapshotRecord]] = None
    created: Optional[SnapshotRecord] = None


def find_by_name(snapshots: List[SnapshotRecord], name: str, guest: Guest) -> Optional[SnapshotRecord]:
    matches = [s for s in snapshots if s.name == name]
    if len(matches) > 1:
        raise AmbiguousSnapshotError(
            "guest '%s' has %d snapshots named '%s' (ids %s); this collection will not guess which one"
            % (guest.name, len(matches), name, ', '.join(s.id for s in matches)),
            details={'snapshots': [s.to_dict() for s in matches]})
    return matches[0] if matches else None


def conflicts(existing: SnapshotRecord, spec: SnapshotSpec) -> List[str]:
    """How an existing snapshot differs from what was asked (empty: it is the same one)."""
    found = []
    if spec.memory is not None and existing.memory != spec.memory:
        found.append('memory is %s, asked %s' % (existing.memory, spec.memory))
    if existing.kind != spec.kind:
        found.append("kind is '%s', asked '%s'" % (existing.kind, spec.kind))
    if spec.description and existing.description != spec.description:
        found.append("description is '%s', asked '%s'" % (existing.description, spec.description))
    if spec.quiesce == 'required' and existing.quiesced is False:
        found.append('it was taken without quiescing, asked quiesce: required')
    return found


class SnapshotEngine:
    """Runs a Request against one backend and returns the one result schema."""

    def __init__(self, backend: SnapshotBackend, check_mode: bool = False, diff: bool = False,
                 wait_policy: Optional[WaitPolicy] = None, progress: Optional[Callable[[str], None]] = None,
                 now: Optional[Callable[[], datetime.datetime]] = None) -> None:
        self.backend = backend
        self.check_mode = check_mode
        self.diff = diff
        self.policy = wait_policy or WaitPolicy()
        self.progress = progress
        self.now = now or utcnow
        self.leases = LeaseKeeper(backend, self.policy.timeout, check_mode, progress)

    # -- public entry points -------------------------------------------------
    def run(self, request: Request) -> Dict[str, Any]:
        request.validate()
        guests = self._find(request)
        # One run per guest from reading the trees to reading them back (_locking.py).
        self.leases = LeaseKeeper(self.backend, self.policy.timeout, self.check_mode, self.progress,
                                  'state=%s' % request.state)
        with self.leases.hold(guests):
            plans = self._look(request, guests)
            decide = getattr(self, '_decide_%s' % request.state)
            for plan in plans:
                decide(request, plan)
            if not self.check_mode:
                self._act(request, plans)
            result = self._result(request, plans)
        result['warnings'] = self.leases.warnings + result['warnings']
        return result

    def info(self, refs: Optional[List[GuestRef]] = None) -> Dict[str, Any]:
        guests = self.backend.find_guests(refs) if refs else self.backend.list_guests()
        reports = []
        for guest in guests:
            snapshots = self.backend.list_snapshots(guest)
            reports.append({'guest': guest.to_dict(), 'snapshots': [s.to_dict() for s in snapshots],
                            'current': next((s.name for s in snapshots if s.current), None),
                            'tree': render_tree(snapshots)})
        count = sum(len(r['snapshots']) for r in reports)
        return {'changed': False, 'provider': self.backend.provider, 'guests': reports,
                'snapshots': reports[0]['snapshots'] if refs and len(reports) == 1 else None,
                'msg': '%d snapshot%s on %d guest%s' % (count, '' if count == 1 else 's',
                                                        len(reports), '' if len(reports) == 1 else 's')}

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
        return [GuestPlan(guest=g, snapshots=self.backend.list_snapshots(g),
                          capabilities=self.backend.capabilities(g)) for g in guests]

    # -- phase 2: decide (no writes) -------------------------------------------
    def _decide_present(self, request: Request, plan: GuestPlan) -> None:
        spec = dataclasses.replace(request.spec or SnapshotSpec(name=''), name=request.snapshot_name or '')
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
            return
        caps = plan.capabilities
        provider = self.backend.provider
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

    def _decide_absent(self, request: Request, plan: GuestPlan) -> None:
        if request.remove_all:
            self._decide_remove_all(plan)
            return
        snap = find_by_name(plan.snapshots, request.snapshot_name or '', plan.guest)
        if snap is None:
            plan.outcome = 'absent'
            return
        kids = descendants(plan.snapshots, snap)
        if request.remove_children and kids and not plan.capabilities.delete_children:
            raise UnsupportedError(plan.capabilities.why_not(
                'delete_children', '%s cannot delete a snapshot together with its children'
                % self.backend.provider))
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
                % self.backend.provider))
        plan.action = 'delete'
        plan.targets = roots
        plan.reasons.append('all %d snapshot%s: %s' % (len(plan.snapshots), '' if len(plan.snapshots) == 1 else 's',
                                                       ', '.join(s.name for s in plan.snapshots)))

    def _decide_reverted(self, request: Request, plan: GuestPlan) -> None:
        snap = find_by_name(plan.snapshots, request.snapshot_name or '', plan.guest)
        if snap is None:
            names = ', '.join(s.name for s in plan.snapshots) or 'none'
            raise SnapshotNotFoundError("guest '%s' has no snapshot '%s' to revert to (it has: %s)"
                                        % (plan.guest.name, request.snapshot_name, names))
        caps = plan.capabilities
        if not caps.revert:
            raise UnsupportedError(caps.why_not('revert', '%s cannot revert guest %s'
                                                % (self.backend.provider, plan.guest.name)))
        if snap.kind == 'external' and not caps.revert_external:
            raise UnsupportedError(caps.why_not('revert_external', '%s cannot revert to external snapshots'
                                                % self.backend.provider))
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
    def _act(self, request: Request, plans: List[GuestPlan]) -> None:
        active = [p for p in plans if p.action != 'none']
        # One snapshot write per guest at a time (providers refuse or serialise
        # concurrent snapshot tasks on one guest); guests run side by side.
        rounds = max((len(p.targets) if p.action == 'delete' else 1 for p in active), default=0)
        for index in range(rounds):
            self.leases.renew()
            batch = []
            for plan in active:
                if plan.error is not None:
                    continue
                if plan.action == 'delete' and index >= len(plan.targets):
                    continue
                op = self._start(request, plan, index)
                if op is not None:
                    plan.operations.append(op)
                    batch.append(op)
            if request.wait:
                self._wait(batch)
            for plan in active:
                if plan.operations and plan.error is None:
                    plan.error = plan.operations[-1].final_error
        if request.wait:
            self._read_back(request, active)
        failed = [p for p in active if p.error is not None]
        if failed and request.state == 'present' and request.all_or_nothing and len(plans) > 1:
            self._roll_back(request, [p for p in active if p.action == 'create'])
            raise self._partial_failure(request, plans, failed, rolled_back=True)
        if failed:
            raise self._partial_failure(request, plans, failed, rolled_back=False)
        for plan in active:
            plan.outcome = {'create': 'created', 'delete': 'deleted', 'revert': 'reverted'}[plan.action]
            if not request.wait:
                plan.outcome = 'started'

    def _read_back(self, request: Request, active: List[GuestPlan]) -> None:
        """Read the trees back where needed; a create the provider does not show is a failure."""
        for plan in active:
            if plan.error is not None:
                continue
            made = plan.operations[-1].result if plan.operations else None
            made = made if isinstance(made, SnapshotRecord) else None
            try:
                if self.diff or (plan.action == 'create' and made is None):
                    plan.after = self.backend.list_snapshots(plan.guest)
                if plan.action == 'create':
                    plan.created = made or find_by_name(plan.after or [], request.snapshot_name or '', plan.guest)
                    if plan.created is None:
                        raise ProviderError("%s reported snapshot '%s' of guest '%s' as created, but it is not "
                                            "there" % (self.backend.provider, request.snapshot_name, plan.guest.name))
            except SavepointError as exc:
                plan.error = exc

    def _start(self, request: Request, plan: GuestPlan, index: int) -> Optional[Operation]:
        try:
            if plan.action == 'create':
                if plan.spec is None:
                    raise InvalidRequestError('internal error: a create without a snapshot specification')
                return self.backend.start_create(plan.guest, plan.spec)
            if plan.action == 'revert':
                return self.backend.start_revert(plan.guest, plan.targets[0], request.power_state)
            remove_children = (request.remove_children or request.remove_all) and request.state == 'absent'
            return self.backend.start_delete(plan.guest, plan.targets[index], remove_children)
        except SavepointError as exc:
            plan.error = exc
            return None

    def _wait(self, operations: List[Operation]) -> None:
        if not operations:
            return
        try:
            self.backend.wait(operations, self.policy, self.progress)
        except WaitTimeoutError as exc:
            for op in operations:
                for step in op.chain():
                    if not step.done:
                        step.error = WaitTimeoutError(
                            '%s of snapshot %s on guest %s did not finish within %ds; it may still be '
                            'running on the provider: check before retrying'
                            % (step.action, step.snapshot_name, step.guest.name, self.policy.timeout),
                            provider_message=exc.msg)

    def _roll_back(self, request: Request, creates: List[GuestPlan]) -> None:
        """Remove what a failed set created, so no guest keeps half a set.

        Every guest of the set is checked, the failed ones too: a create cut off
        by a lost connection may still have happened. What cannot be checked is
        said so, never assumed.
        """
        ops = []
        for plan in creates:
            try:
                snap = find_by_name(self.backend.list_snapshots(plan.guest), request.snapshot_name or '',
                                    plan.guest)
                if snap is None:
                    plan.rollback = 'nothing to remove'
                    continue
                op = self.backend.start_delete(plan.guest, snap, False)
            except SavepointError as exc:
                plan.rollback = 'FAILED: %s' % exc.msg
                continue
            ops.append((plan, op))
        try:
            self._wait([started for _plan, started in ops])
        except SavepointError as exc:  # the provider went away while waiting
            for plan, op in ops:
                if not op.complete:
                    op.error = exc
        for plan, op in ops:
            if op.final_error is not None:
                plan.rollback = 'FAILED: %s' % op.final_error.msg
            else:
                plan.rollback = 'removed'
                plan.rolled_back = True

    def _partial_failure(self, request: Request, plans: List[GuestPlan], failed: List[GuestPlan],
                         rolled_back: bool) -> SavepointError:
        results = [self._guest_result(request, p) for p in plans]
        error = failed[0].error
        if len(plans) == 1 and error is not None:
            error.details.setdefault('results', results)
            return error
        what = ', '.join("'%s': %s" % (p.guest.name, p.error.msg if p.error else '') for p in failed)
        msg = '%d of %d guests failed (%s)' % (len(failed), len(plans), what)
        if rolled_back:
            removed = [p.guest.name for p in plans if p.rollback == 'removed']
            stuck = [p for p in plans if p.rollback.startswith('FAILED')]
            msg += '; snapshot set rolled back: %s removed from %s' % (
                request.snapshot_name, ', '.join(removed) if removed else 'no guest')
            if stuck:
                msg += '; ROLLBACK INCOMPLETE, check by hand: %s' % '; '.join(
                    '%s (%s)' % (p.guest.name, p.rollback[len('FAILED: '):]) for p in stuck)
        return PartialFailureError(msg, details={'results': results})

    # -- results -------------------------------------------------------------------
    def _guest_result(self, request: Request, plan: GuestPlan) -> Dict[str, Any]:
        snapshot: Optional[SnapshotRecord] = None
        if request.state == 'present':
            snapshot = plan.created or plan.existing
        elif plan.targets:
            snapshot = plan.targets[0]
        outcome = plan.outcome or ('would %s' % plan.action if self.check_mode and plan.action != 'none' else '')
        if plan.error is not None:
            outcome = 'failed'
        result: Dict[str, Any] = {
            'guest': plan.guest.to_dict(),
            'action': outcome,
            'changed': plan.action != 'none' and plan.error is None and not plan.rolled_back,
            'snapshot': snapshot.to_dict() if snapshot else None,
            'msg': self._describe(request, plan, outcome, snapshot),
            'warnings': list(plan.warnings),
            'cost': self._cost(plan, snapshot),
            'operations': [{'action': op.action, 'id': op.id, 'done': op.complete,
                            'seconds': self._op_seconds(op)} for op in plan.operations],
        }
        if request.remove_all and plan.action == 'delete':
            result['removed'] = [s.to_dict() for s in plan.snapshots]
        elif plan.action == 'delete' and len(plan.targets) > 1 or request.state == 'pruned':
            result['removed'] = [s.to_dict() for s in plan.targets]
        if plan.error is not None:
            result['error'] = plan.error.to_result()
        if plan.rollback:
            result['rollback'] = plan.rollback
            result['rolled_back'] = plan.rolled_back
        return result

    @staticmethod
    def _op_seconds(op: Operation) -> Optional[float]:
        last = op.chain()[-1]
        if last.finished is None:
            return None
        return round(last.finished - op.started, 3)

    def _cost(self, plan: GuestPlan, snapshot: Optional[SnapshotRecord]) -> Dict[str, Any]:
        blocked = None
        if plan.action == 'create' and plan.operations:
            blocked = plan.operations[0].blocked_seconds
        return {'guest_blocked_seconds': blocked,
                'size_bytes': snapshot.size_bytes if snapshot is not None else None}

    def _describe(self, request: Request, plan: GuestPlan, outcome: str,
                  snapshot: Optional[SnapshotRecord]) -> str:
        name = request.snapshot_name
        guest = plan.guest.name
        if plan.error is not None:
            return "guest '%s': %s" % (guest, plan.error.msg)
        text = {
            'exists': "snapshot '%s' of guest '%s' already exists" % (name, guest),
            'absent': ("guest '%s' has no snapshots" % guest if request.remove_all
                       else "guest '%s' has no snapshot '%s'" % (guest, name)),
            'kept': "guest '%s': no owned snapshot matches the retention rule" % guest,
            'created': "created snapshot '%s' of guest '%s'" % (name, guest),
            'deleted': "deleted %s of guest '%s'" % (', '.join("'%s'" % s.name for s in plan.targets), guest),
            'reverted': "reverted guest '%s' to snapshot '%s'" % (guest, name),
            'started': "started %s of snapshot '%s' on guest '%s' (not waited for)" % (plan.action, name, guest),
        }.get(outcome)
        if text is None and outcome.startswith('would '):
            verb = {'create': 'create snapshot', 'delete': 'delete snapshot', 'revert': 'revert to snapshot'}
            targets = ', '.join("'%s'" % s.name for s in plan.targets) or "'%s'" % name
            text = "would %s %s of guest '%s' (check mode: nothing changed)" % (
                verb[plan.action].rsplit(' ', 1)[0], targets, guest)
        text = text or "guest '%s': nothing to do" % guest
        if outcome == 'created' and plan.operations and plan.operations[0].blocked_seconds is not None:
            text += ' (guest blocked %.3fs)' % plan.operations[0].blocked_seconds
        if outcome == 'reverted' and request.power_state != 'restore':
            text += ', power state %s' % request.power_state
        if plan.reasons:
            text += ' (%s)' % '; '.join(plan.reasons)
        return text

    def _predict(self, request: Request, plan: GuestPlan) -> List[SnapshotRecord]:
        """The tree after the plan, for --diff in check mode."""
        snaps = [dataclasses.replace(s, children=list(s.children)) for s in plan.snapshots]
        if plan.action == 'create' and plan.spec is not None:
            current = next((s for s in snaps if s.current), None)
            for snap in snaps:
                snap.current = False
            snaps.append(SnapshotRecord(name=plan.spec.name, id='(new)', current=True,
                                        parent=current.name if current else None,
                                        parent_id=current.id if current else None,
                                        memory=bool(plan.spec.memory), kind=plan.spec.kind,
                                        expires_at=(plan.spec.marker.to_dict()['expires_at']
                                                    if plan.spec.marker else None)))
        elif plan.action == 'revert':
            for snap in snaps:
                snap.current = snap.id == plan.targets[0].id
        elif plan.action == 'delete':
            gone = set()
            for target in plan.targets:
                gone.add(target.id)
                if (request.remove_children or request.remove_all) and request.state == 'absent':
                    gone.update(d.id for d in descendants(snaps, target))
            for snap in snaps:
                if snap.parent_id in gone and snap.id not in gone:
                    parent = next((s for s in snaps if s.id == snap.parent_id), None)
                    while parent is not None and parent.id in gone:
                        parent = next((s for s in snaps if s.id == parent.parent_id), None)
                    snap.parent_id = parent.id if parent else None
                    snap.parent = parent.name if parent else None
            snaps = [s for s in snaps if s.id not in gone]
        return snaps

    def _diff(self, request: Request, plans: List[GuestPlan]) -> Dict[str, str]:
        before, after = [], []
        for plan in plans:
            header = '# guest %s\n' % plan.guest.name if len(plans) > 1 else ''
            if plan.after is not None:
                then = plan.after
            elif plan.action == 'none':
                then = plan.snapshots
            else:
                then = self._predict(request, plan)
            before.append(header + render_tree(plan.snapshots))
            after.append(header + render_tree(then))
        return {'before': ''.join(before), 'after': ''.join(after),
                'before_header': 'snapshots before', 'after_header': 'snapshots after'}

    def _result(self, request: Request, plans: List[GuestPlan]) -> Dict[str, Any]:
        results = [self._guest_result(request, p) for p in plans]
        changed = any(r['changed'] for r in results)
        single = results[0] if len(results) == 1 else None
        if single is not None:
            msg = single['msg']
        else:
            counts: Dict[str, int] = {}
            for r in results:
                counts[r['action'] or 'nothing to do'] = counts.get(r['action'] or 'nothing to do', 0) + 1
            msg = '%s: %s' % (request.snapshot_name or 'retention',
                              ', '.join('%s on %d guest%s' % (k, v, '' if v == 1 else 's')
                                        for k, v in sorted(counts.items())))
        result: Dict[str, Any] = {
            'changed': changed,
            'provider': self.backend.provider,
            'msg': msg,
            'action': single['action'] if single else None,
            'guest': single['guest'] if single else None,
            'snapshot': single['snapshot'] if single else None,
            'results': results,
            'warnings': [w for r in results for w in r['warnings']],
        }
        if self.diff:
            result['diff'] = self._diff(request, plans)
        return result

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one result schema, built from the engine's per-guest plans.

Kept apart from the plan/act logic of ``_engine.SnapshotEngine`` (which
inherits this): what is reported -- per-guest results, messages, the
predicted or read-back tree for --diff, the failure of a set -- in one place.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ._errors import PartialFailureError, SavepointError
from ._model import SnapshotRecord, descendants, render_tree
from ._waiting import Operation

if TYPE_CHECKING:  # pragma: no cover - for type checkers only (the engine imports this module)
    from ._backend import SnapshotBackend
    from ._request import GuestPlan, Request


class ResultBuilder:
    """Result building of SnapshotEngine: needs its backend (for the provider name), check_mode and diff."""

    backend: 'SnapshotBackend'
    check_mode: bool
    diff: bool

    def _partial_failure(self, request: 'Request', plans: List['GuestPlan'], failed: List['GuestPlan'],
                         rolled_back: bool) -> SavepointError:
        results = [self._guest_result(request, p) for p in plans]
        error = failed[0].error
        if len(plans) == 1 and error is not None:
            error.details.setdefault('results', results)
            return error
        what = ', '.join("'%s'%s: %s" % (p.guest.name, ' (%s)' % p.guest.provider if p.guest.provider else '',
                                         p.error.msg if p.error else '') for p in failed)
        msg = '%d of %d guests failed (%s)' % (len(failed), len(plans), what)
        if rolled_back:
            removed = ['%s%s' % (p.guest.name, ' (%s)' % p.guest.provider if p.guest.provider else '')
                       for p in plans if p.rollback == 'removed']
            stuck = [p for p in plans if p.rollback.startswith('FAILED')]
            msg += '; snapshot set rolled back: %s removed from %s' % (
                request.snapshot_name, ', '.join(removed) if removed else 'no guest')
            if stuck:
                msg += '; ROLLBACK INCOMPLETE, check by hand: %s' % '; '.join(
                    '%s (%s)' % (p.guest.name, p.rollback[len('FAILED: '):]) for p in stuck)
        return PartialFailureError(msg, details={'results': results})

    def _guest_result(self, request: 'Request', plan: 'GuestPlan') -> Dict[str, Any]:
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
            'provider': plan.guest.provider or self.backend.provider,
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

    def _cost(self, plan: 'GuestPlan', snapshot: Optional[SnapshotRecord]) -> Dict[str, Any]:
        blocked = None
        if plan.action == 'create' and plan.operations:
            blocked = plan.operations[0].blocked_seconds
        return {'guest_blocked_seconds': blocked,
                'size_bytes': snapshot.size_bytes if snapshot is not None else None}

    def _describe(self, request: 'Request', plan: 'GuestPlan', outcome: str,
                  snapshot: Optional[SnapshotRecord]) -> str:
        name = request.snapshot_name
        guest = plan.guest.name
        if plan.error is not None:
            return "guest '%s': %s" % (guest, plan.error.msg)
        if request.renames and outcome == 'exists' and snapshot is not None:
            return "snapshot '%s' of guest '%s' already has the name and description asked" % (snapshot.name, guest)
        text = {
            'exists': "snapshot '%s' of guest '%s' already exists" % (name, guest),
            'absent': ("guest '%s' has no snapshots" % guest if request.remove_all
                       else "guest '%s' has no snapshot '%s'" % (guest, name)),
            'kept': "guest '%s': no owned snapshot matches the retention rule" % guest,
            'created': "created snapshot '%s' of guest '%s'" % (name, guest),
            'deleted': "deleted %s of guest '%s'" % (', '.join("'%s'" % s.name for s in plan.targets), guest),
            'reverted': "reverted guest '%s' to snapshot '%s'" % (guest, name),
            'renamed': "renamed snapshot '%s' of guest '%s'" % (plan.targets[0].name if plan.targets else name, guest),
            'started': "started %s of snapshot '%s' on guest '%s' (not waited for)" % (plan.action, name, guest),
        }.get(outcome)
        if text is None and outcome.startswith('would '):
            verb = {'create': 'create snapshot', 'delete': 'delete snapshot', 'revert': 'revert to snapshot',
                    'rename': 'rename snapshot'}
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

    def _predict(self, request: 'Request', plan: 'GuestPlan') -> List[SnapshotRecord]:
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
        elif plan.action == 'rename':
            old = plan.targets[0]
            for snap in snaps:
                if snap.id == old.id:
                    snap.name = request.new_name or snap.name
                    if request.new_description is not None:
                        snap.description = request.new_description
                if snap.parent_id == old.id:
                    snap.parent = snap.parent if not request.new_name else request.new_name
                snap.children = [request.new_name if c == old.name and request.new_name else c for c in snap.children]
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

    def _diff(self, request: 'Request', plans: List['GuestPlan']) -> Dict[str, str]:
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

    def _result(self, request: 'Request', plans: List['GuestPlan']) -> Dict[str, Any]:
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

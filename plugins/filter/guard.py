# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the savepoint.virt.guard role.

The role composes modules; the little logic it needs (which guest a host is,
grouping a batch into one bulk task per provider, reading one host's part out
of a bulk result, the per-host outcome and the summary table) lives here as
plain functions, so it is unit-tested without Ansible and the role stays free
of Jinja gymnastics.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional

from ansible_collections.savepoint.virt.plugins.module_utils._errors import InvalidRequestError
from ansible_collections.savepoint.virt.plugins.module_utils._model import parse_duration
from ansible_collections.savepoint.virt.plugins.module_utils._options import parallel_variable_error
from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS

PROVIDERS = ('libvirt', 'openstack', 'vmware')
OUTCOMES = ('succeeded', 'reverted', 'revert_failed', 'failed_before_snapshot', 'cleanup_failed')
CHECK_KINDS = ('port', 'url', 'command')
CHECK_KEYS = set(CHECK_KINDS) | {'host', 'status', 'timeout', 'retries', 'delay', 'delegate_to', 'name'}


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return str(value)


def guard_target(host: str, provider: Any = None, guest: Any = None, uuid: Any = None,
                 connection: Any = None) -> Dict[str, Any]:
    """Which guest this inventory host is; ``error`` says what is wrong with the mapping.

    An empty string is an error, never a silent default.
    """
    target: Dict[str, Any] = {'host': host, 'provider': _text(provider), 'ref': None, 'label': None,
                              'connection_key': None, 'error': None}
    errors = []
    if provider is None:
        errors.append('savepoint_provider is not set (one of %s)' % ', '.join(PROVIDERS))
    elif provider not in PROVIDERS:
        errors.append("savepoint_provider is '%s'; it must be one of %s" % (provider, ', '.join(PROVIDERS)))
    if guest is not None and uuid is not None:
        errors.append('set savepoint_guest or savepoint_guest_uuid, not both')
    elif uuid is not None:
        if not isinstance(uuid, str) or not uuid.strip():
            errors.append('savepoint_guest_uuid is empty')
        else:
            target['ref'] = {'uuid': uuid.strip()}
            target['label'] = uuid.strip()
    else:
        name = host if guest is None else guest
        if not isinstance(name, str) or not name.strip():
            errors.append('savepoint_guest is empty')
        else:
            target['ref'] = {'name': name}
            target['label'] = name
    if connection is None:
        connection = {}
    if not isinstance(connection, Mapping):
        errors.append('savepoint_connection must be a dict of the provider\'s connection options')
    else:
        empty = sorted(k for k, v in connection.items() if v == '')
        if empty:
            errors.append('savepoint_connection has empty values for %s' % ', '.join(empty))
        # Hosts sharing a connection share one bulk task; the key never holds the values themselves.
        digest = hashlib.sha256(json.dumps(dict(connection), sort_keys=True, default=str).encode()).hexdigest()
        target['connection_key'] = digest[:16]
    if errors:
        target['error'] = 'host %s: %s' % (host, '; '.join(errors))
    return target


def guard_settings_errors(settings: Mapping[str, Any]) -> List[str]:
    """What is wrong with the role's own variables (beyond the argument spec's types)."""
    errors = []
    tasks, role = settings.get('guard_change_tasks'), settings.get('guard_change_role')
    if tasks == '' or role == '':
        errors.append('guard_change_tasks / guard_change_role must not be empty strings')
    elif bool(tasks) == bool(role):
        errors.append('set exactly one of guard_change_tasks (a tasks file) or guard_change_role (a role name)')
    keep = settings.get('guard_keep_for')
    if keep is not None:
        try:
            parse_duration(keep)  # the snapshot modules' own reading of expires_in
        except InvalidRequestError as exc:
            errors.append('guard_keep_for: %s' % exc.msg)
    # 0 or '' must not quietly become the provider's default: the user asked for something else
    parallel = parallel_variable_error(settings.get('guard_parallel'), 'guard_parallel')
    if parallel is not None:
        errors.append(parallel)
    prefix = settings.get('guard_snapshot_prefix')
    if not prefix:
        errors.append('guard_snapshot_prefix must not be empty')
    checks = settings.get('guard_health_checks') or []
    if not isinstance(checks, list):
        errors.append('guard_health_checks must be a list')
        checks = []
    for index, check in enumerate(checks):
        where = 'guard_health_checks[%d]' % index
        if not isinstance(check, Mapping):
            errors.append('%s must be a dict such as {port: 22}' % where)
            continue
        kinds = [k for k in CHECK_KINDS if k in check]
        if len(kinds) != 1:
            errors.append('%s needs exactly one of port, url, command (has: %s)'
                          % (where, ', '.join(kinds) or 'none'))
        unknown = sorted(set(check) - CHECK_KEYS)
        if unknown:
            errors.append('%s has unknown keys %s' % (where, ', '.join(unknown)))
        for key in ('timeout', 'retries', 'delay', 'port', 'status'):
            if key in check and (isinstance(check[key], bool) or not isinstance(check[key], int)
                                 or check[key] < (0 if key in ('retries', 'delay') else 1)):
                errors.append('%s: %s must be a positive whole number' % (where, key))
        for key in ('url', 'command', 'host'):
            if key in check and (not isinstance(check[key], str) or not check[key].strip()):
                errors.append('%s: %s must not be empty' % (where, key))
        if 'status' in check and 'url' not in check:
            errors.append('%s: status only applies to a url check' % where)
        if 'host' in check and 'port' not in check:
            errors.append('%s: host only applies to a port check' % where)
    return errors


def guard_run_id(hostvars: Mapping[str, Any], hosts: Iterable[str], job_id: Any, now: str) -> str:
    """One id for the whole run: the AWX job id, else the time the run's first batch started."""
    if job_id not in (None, ''):
        return 'job%s' % job_id
    for host in hosts:
        found = (hostvars.get(host) or {}).get('__guard_run_id')
        if found:
            return str(found)
    return str(now)


def _connection_of(hostvars: Mapping[str, Any], host: str) -> Dict[str, Any]:
    connection = (hostvars.get(host) or {}).get('savepoint_connection') or {}
    return dict(connection) if isinstance(connection, Mapping) else {}


def _clash(hostvars: Mapping[str, Any], groups: List[Dict[str, Any]]) -> bool:
    """Whether these groups' connections disagree on an option their providers share (validate_certs,
    VMware's and OpenStack's): one task holds each option once, so a value -- or its absence -- would
    silently change the other provider's connection. Such groups get tasks of their own."""
    tables = {backend.provider: backend.connection_options for backend in BACKENDS}
    connections = [(g['provider'], _connection_of(hostvars, g['connection_host'])) for g in groups]
    for key in set().union(*(set(c) for _p, c in connections)):
        values = {json.dumps(c.get(key), sort_keys=True, default=str) if key in c else '<unset>'
                  for provider, c in connections if key in tables.get(provider, {})}
        if len(values) > 1:
            return True
    return False


def guard_batch(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The bulk snapshot tasks of a batch.

    Hosts of one provider and connection share one task. When the batch spans providers, one
    group of each provider is joined into ONE task across providers (``guests`` entries with
    their ``provider``, savepoint.virt.snapshot without ``provider``), so the batch's restore
    points are one all-or-nothing set (guard_revert_together) whatever the guests run on. What
    cannot join -- a second connection of one provider (one task holds one connection per
    provider), or connections giving a shared option two values -- gets a task of its own.
    Hosts whose restore points are named differently (a per-host guard_snapshot_prefix) never
    share a task: a task gives all its guests one name, and a host must be reverted to the one
    taken for it. Each task: ``provider`` (the task's option; None across providers), ``label``,
    ``snapshot_name``, ``hosts`` and ``guests`` in the same order, and ``connection_hosts`` whose
    savepoint_connection the task's module_defaults unite (the hosts, never the values, so no
    secret is in the loop item).
    """
    groups: Dict[Any, Dict[str, Any]] = {}
    for host in hosts:
        facts = hostvars.get(host) or {}
        target = facts.get('__guard_target')
        if not target or target.get('error') or facts.get('__guard_error'):
            continue
        name = facts.get('__guard_snapshot_name')
        key = (target['provider'], target['connection_key'], name)
        group = groups.setdefault(key, {'provider': target['provider'], 'connection_host': host,
                                        'snapshot_name': name, 'hosts': [], 'guests': []})
        group['hosts'].append(host)
        group['guests'].append(target['ref'])
    # the cross-provider set: the first group of each provider among those named as the first group
    first: Dict[str, Dict[str, Any]] = {}
    for group in groups.values():
        if group['snapshot_name'] == next(iter(groups.values()))['snapshot_name']:
            first.setdefault(group['provider'], group)
    joined = list(first.values())
    if len(joined) < 2 or _clash(hostvars, joined):
        joined = []
    tasks: List[Dict[str, Any]] = []
    if joined:
        providers = sorted(g['provider'] for g in joined)
        tasks.append({'provider': None, 'label': '+'.join(providers), 'snapshot_name': joined[0]['snapshot_name'],
                      'connection_hosts': [g['connection_host'] for g in joined],
                      'hosts': [h for g in joined for h in g['hosts']],
                      'guests': [dict(ref, provider=g['provider']) for g in joined for ref in g['guests']]})
    for group in groups.values():
        if any(group is g for g in joined):
            continue
        tasks.append(dict(group, label=group['provider'], connection_hosts=[group['connection_host']]))
    return tasks


def _number(value: Any) -> Optional[float]:
    try:
        return None if value in (None, '') else float(value)
    except (TypeError, ValueError):
        return None


def guard_restore_point(loop_results: Any, host: str, target: Optional[Mapping[str, Any]] = None,
                        error: Optional[str] = None) -> Dict[str, Any]:
    """This host's part of the bulk snapshot tasks: taken or not, why not, pause, size, seconds."""
    point: Dict[str, Any] = {'taken': False, 'check_mode': False, 'error': None, 'snapshot': None,
                             'pause_seconds': None, 'size_bytes': None, 'seconds': None, 'expires_at': None,
                             'power_state': None}
    if error:
        point['error'] = error
        return point
    if target and target.get('error'):
        point['error'] = target['error']
        return point
    for task in loop_results or []:
        group = task.get('__guard_group') or task.get('item') or {}
        hosts = list(group.get('hosts') or [])
        if host not in hosts:
            continue
        index = hosts.index(host)
        entries = task.get('results') or []
        if task.get('skipped'):
            point['error'] = 'the restore point task was skipped'
            return point
        if index >= len(entries):
            point['error'] = 'no restore point was taken: %s' % (task.get('msg') or 'the snapshot task failed')
            return point
        entry = entries[index]
        snap = entry.get('snapshot') or {}
        cost = entry.get('cost') or {}
        ops = entry.get('operations') or []
        point['snapshot'] = snap.get('name')
        point['pause_seconds'] = _number(cost.get('guest_blocked_seconds'))
        point['size_bytes'] = cost.get('size_bytes')
        point['seconds'] = _number(ops[0].get('seconds')) if ops else None
        point['expires_at'] = snap.get('expires_at')
        point['power_state'] = snap.get('power_state') or (entry.get('guest') or {}).get('power_state')
        point['memory'] = snap.get('memory')
        action = entry.get('action') or ''
        if entry.get('error') or action == 'failed' or entry.get('rolled_back'):
            why = (entry.get('error') or {}).get('msg') or entry.get('msg') or task.get('msg')
            if entry.get('rolled_back') or (task.get('failed') and not entry.get('error')):
                why = 'the restore point set of this batch was rolled back: %s' % task.get('msg')
            point['error'] = 'no restore point was taken: %s' % why
        elif action == 'created':
            point['taken'] = True
        elif action.startswith('would '):
            point['taken'] = True
            point['check_mode'] = True
        elif action == 'exists':
            # A same-name restore point is an earlier run's: reverting to it would undo everything since.
            point['error'] = ("a restore point named '%s' already exists on guest %s; it is not this run's, "
                              'so it is not used' % (snap.get('name'), (entry.get('guest') or {}).get('name')))
        else:
            point['error'] = 'no restore point was taken (%s)' % (entry.get('msg') or action)
        return point
    point['error'] = 'no restore point task ran for this host'
    return point


def guard_failure(result: Any, task_name: Any = None) -> str:
    """One line for what failed: the task, its message, and the last words of its output."""
    result = result if isinstance(result, Mapping) else {}
    text = str(result.get('msg') or 'failed')
    for key in ('stderr', 'stdout'):
        output = str(result.get(key) or '').strip()
        if output:
            tail = output.splitlines()[-1][:300]
            if tail not in text:
                text = '%s (%s)' % (text, tail)
            break
    return '%s: %s' % (task_name or 'a task', text)


def guard_revert_power(point: Mapping[str, Any], wanted: str) -> str:
    """power_state of the revert: ``before`` is the state the guest had when the restore point was taken.

    A snapshot without memory (VMware's default) reverts a running guest to powered off under
    ``restore``; a guarded change must hand the host back running, as it was.
    """
    if wanted != 'before':
        return wanted
    point = point or {}
    if point.get('memory'):
        return 'restore'  # a memory snapshot brings the guest back exactly as it was
    return {'running': 'on', 'off': 'off'}.get(str(point.get('power_state')), 'restore')


def guard_failed_hosts(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> List[str]:
    """Hosts of the batch whose change or health check failed."""
    return [h for h in hosts if (hostvars.get(h) or {}).get('__guard_failure')]


def _seconds(start: Any, end: Any) -> Optional[float]:
    a, b = _number(start), _number(end)
    if a is None or b is None:
        return None
    return round(max(b - a, 0.0), 3)


def _msg(result: Optional[Mapping[str, Any]]) -> str:
    result = result or {}
    return str(result.get('msg') or 'failed')


def guard_report(state: Mapping[str, Any]) -> Dict[str, Any]:
    """The host's outcome record (set_stats, summary) and the one message a failed host ends with."""
    point = state.get('point') or {}
    target = state.get('target') or {}
    host = state.get('host')
    guest = target.get('label') or host
    snapshot = point.get('snapshot') or state.get('snapshot_name')
    times = state.get('times') or {}
    failure = state.get('failure')
    together = state.get('together_with') or []
    revert = state.get('revert')
    cleanup = state.get('cleanup')
    keep_for = state.get('keep_for')
    report: Dict[str, Any] = {
        'guest': guest, 'provider': target.get('provider'), 'snapshot': snapshot,
        'outcome': None, 'check_mode': bool(point.get('check_mode')), 'error': failure,
        'health_back': None, 'kept': False, 'expires_at': None,
        'seconds': {'snapshot': point.get('seconds'),
                    'change': _seconds(times.get('change'), times.get('health') or times.get('done')),
                    'health': _seconds(times.get('health'), times.get('done')),
                    'revert': _seconds(times.get('revert'), times.get('revert_done'))},
        'snapshot_pause_seconds': point.get('pause_seconds'), 'snapshot_size_bytes': point.get('size_bytes'),
        'msg': '',
    }
    if not point.get('taken'):
        report.update(outcome='failed_before_snapshot', snapshot=None, error=point.get('error'))
        report['msg'] = 'guard: guest %s: %s; the change was not made' % (guest, point.get('error'))
        return report
    if point.get('check_mode'):
        report['outcome'] = 'failed_before_snapshot' if failure else 'succeeded'
        report['msg'] = ('guard: guest %s (check mode, no restore point taken): the change failed: %s'
                         % (guest, failure)) if failure else ''
        return report
    if revert is not None:
        why = failure or 'reverted together with %s, whose change failed' % ', '.join(together)
        report['error'] = why
        if revert.get('failed'):
            report.update(outcome='revert_failed', kept=True, expires_at=point.get('expires_at'))
            expiry = (' It expires at %s (guard_keep_for): do not prune it before recovering.'
                      % point['expires_at']) if point.get('expires_at') else ' It has no expiry.'
            # Whether the restore point still exists is not known here (the revert may have failed
            # because it is gone), so the message says what the role did -- removed nothing -- and
            # what to check, never that a snapshot is there to recover from.
            report['msg'] = ('guard: REVERT FAILED for guest %s: the change failed (%s) and reverting to restore '
                             "point '%s' failed too (%s). The guest may be half-changed: recover it by hand. "
                             "The role removed nothing: check with snapshot_info whether snapshot '%s' still "
                             'exists before reverting to it.%s' % (guest, why, snapshot, _msg(revert), snapshot,
                                                                   expiry))
            return report
        health_back = state.get('health_back')
        report.update(outcome='reverted', health_back=health_back)
        health = ('health is back' if health_back else
                  'health is NOT back (%s)' % (state.get('health_error') or 'health checks failed'))
        if keep_for:
            report.update(kept=True, expires_at=point.get('expires_at'))
            kept = "; restore point '%s' kept until %s" % (snapshot, point.get('expires_at'))
        elif cleanup is not None and cleanup.get('failed'):
            report['kept'] = True
            kept = "; restore point '%s' could NOT be removed (%s): remove it by hand" % (snapshot, _msg(cleanup))
        else:
            kept = "; restore point '%s' removed" % snapshot
        report['msg'] = ("guard: guest %s was reverted to restore point '%s' after the change failed: %s; %s%s"
                         % (guest, snapshot, why, health, kept))
        return report
    if cleanup is not None and cleanup.get('failed'):
        report.update(outcome='cleanup_failed', kept=True)
        report['msg'] = ("guard: guest %s: the change succeeded and is kept (not reverted), but restore point '%s' "
                         'could not be removed: %s; remove it by hand' % (guest, snapshot, _msg(cleanup)))
        return report
    report['outcome'] = 'succeeded'
    if keep_for:
        report.update(kept=True, expires_at=point.get('expires_at'))
    return report


def guard_summary(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> List[str]:
    """A table of every host that has an outcome so far, for the end of each batch."""
    rows = [('host', 'guest', 'provider', 'outcome', 'snapshot', 'pause s', 'change s', 'revert s')]
    for host in hosts:
        report = (hostvars.get(host) or {}).get('__guard_report')
        if not report:
            continue
        secs = report.get('seconds') or {}
        outcome = report.get('outcome') or ''
        if report.get('check_mode'):
            outcome += ' (check mode)'

        def fmt(value: Any) -> str:
            return '-' if value is None else '%.2f' % float(value)
        rows.append((host, str(report.get('guest') or ''), str(report.get('provider') or ''), outcome,
                     str(report.get('snapshot') or '-') + (' (kept)' if report.get('kept') else ''),
                     fmt(report.get('snapshot_pause_seconds')), fmt(secs.get('change')), fmt(secs.get('revert'))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    counts: Dict[str, int] = {}
    for row in rows[1:]:
        key = row[3].split(' ')[0]
        counts[key] = counts.get(key, 0) + 1
    lines.append('%d host%s: %s' % (len(rows) - 1, '' if len(rows) == 2 else 's',
                                    ', '.join('%s %d' % (k, counts[k]) for k in OUTCOMES if k in counts) or 'none'))
    return lines


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        # a filter is named as its function
        return {function.__name__: function for function in (
            guard_target, guard_settings_errors, guard_run_id, guard_batch, guard_restore_point,
            guard_failed_hosts, guard_failure, guard_revert_power, guard_report, guard_summary,
        )}

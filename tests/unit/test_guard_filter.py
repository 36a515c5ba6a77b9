"""The guard role's filters: host -> guest mapping, batching, reading a bulk result, outcomes, summary."""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.filter.guard import (
    guard_batch, guard_failed_hosts, guard_report, guard_restore_point, guard_run_id, guard_settings_errors,
    guard_summary, guard_target,
)

SETTINGS = {'guard_change_tasks': '/x/change.yml', 'guard_change_role': None, 'guard_keep_for': None,
            'guard_snapshot_prefix': 'savepoint-guard', 'guard_health_checks': []}


def test_target_defaults_to_the_inventory_hostname():
    target = guard_target('web01', 'libvirt', connection={'uri': 'qemu:///system'})
    assert target['ref'] == {'name': 'web01'} and target['error'] is None
    assert 'qemu' not in target['connection_key']  # a digest, never the values themselves


def test_target_by_uuid_and_by_guest_name():
    assert guard_target('web01', 'vmware', uuid='4201-ab')['ref'] == {'uuid': '4201-ab'}
    assert guard_target('web01', 'vmware', guest='WEB-01')['ref'] == {'name': 'WEB-01'}


@pytest.mark.parametrize('kwargs,words', [
    ({}, 'savepoint_provider is not set'),
    ({'provider': 'xen'}, "savepoint_provider is 'xen'"),
    ({'provider': 'libvirt', 'guest': ''}, 'savepoint_guest is empty'),
    ({'provider': 'libvirt', 'uuid': ' '}, 'savepoint_guest_uuid is empty'),
    ({'provider': 'libvirt', 'guest': 'a', 'uuid': 'b'}, 'not both'),
    ({'provider': 'libvirt', 'connection': 'qemu:///system'}, 'must be a dict'),
    ({'provider': 'libvirt', 'connection': {'uri': ''}}, 'empty values for uri'),
])
def test_bad_mapping_is_an_error_naming_the_host_and_variable(kwargs, words):
    error = guard_target('web01', **kwargs)['error']
    assert error.startswith('host web01: ') and words in error


@pytest.mark.parametrize('change,words', [
    ({'guard_change_tasks': None}, 'exactly one of'),
    ({'guard_change_role': 'patch'}, 'exactly one of'),
    ({'guard_change_tasks': ''}, 'must not be empty'),
    ({'guard_keep_for': 'soon'}, 'guard_keep_for'),
    ({'guard_keep_for': ''}, 'guard_keep_for'),
    ({'guard_snapshot_prefix': ''}, 'guard_snapshot_prefix'),
    ({'guard_health_checks': [{'port': 22, 'url': 'http://x'}]}, 'exactly one of port, url, command'),
    ({'guard_health_checks': [{'url': 'http://x', 'retries': -1}]}, 'retries must be'),
    ({'guard_health_checks': [{'command': ''}]}, 'command must not be empty'),
    ({'guard_health_checks': [{'command': 'true', 'status': 200}]}, 'status only applies'),
    ({'guard_health_checks': [{'port': 22, 'verb': 'GET'}]}, 'unknown keys verb'),
    ({'guard_health_checks': ['port 22']}, 'must be a dict'),
    ({'guard_parallel': 0}, 'guard_parallel must be between 1'),
    ({'guard_parallel': '0'}, 'guard_parallel must be between 1'),
    ({'guard_parallel': ''}, 'guard_parallel must be a whole number'),
    ({'guard_parallel': 1001}, 'guard_parallel must be between 1 (one guest after the other) and 1000'),
    ({'guard_parallel': 2.5}, 'guard_parallel must be a whole number'),
    ({'guard_parallel': True}, 'guard_parallel must be a whole number'),
])
def test_settings_errors(change, words):
    errors = guard_settings_errors(dict(SETTINGS, **change))
    assert any(words in e for e in errors), errors


def test_good_settings_have_no_errors():
    checks = [{'port': 22, 'timeout': 5}, {'url': 'http://127.0.0.1/health', 'status': 200, 'retries': 0},
              {'command': 'systemctl is-active nginx', 'delegate_to': 'localhost'}]
    assert guard_settings_errors(dict(SETTINGS, guard_health_checks=checks, guard_keep_for='3d')) == []
    for parallel in (None, 1, 32, 1000, '4'):   # '4': as -e guard_parallel=4 passes it
        assert guard_settings_errors(dict(SETTINGS, guard_parallel=parallel)) == [], parallel


def test_run_id_prefers_the_job_id_then_an_earlier_batch():
    assert guard_run_id({}, ['a'], 42, '20261201T000000Z') == 'job42'
    assert guard_run_id({'a': {'__guard_run_id': 'T1'}, 'b': {}}, ['a', 'b'], None, 'T2') == 'T1'
    assert guard_run_id({'a': {}}, ['a'], '', 'T2') == 'T2'


def _hostvars():
    return {
        'a': {'__guard_target': guard_target('a', 'libvirt', connection={'uri': 'qemu:///system'})},
        'b': {'__guard_target': guard_target('b', 'libvirt', connection={'uri': 'qemu:///system'})},
        'c': {'__guard_target': guard_target('c', 'vmware', uuid='42-1')},
        'd': {'__guard_target': guard_target('d', 'libvirt', connection={'uri': 'qemu+ssh://kvm2/system'})},
        'e': {'__guard_target': guard_target('e', None)},
        'f': {'__guard_target': guard_target('f', 'libvirt', connection={'uri': 'qemu:///system'}),
              '__guard_error': 'guard_keep_for: bad'},
    }


def test_batch_is_one_task_across_providers_and_one_per_further_connection_without_broken_hosts():
    groups = guard_batch(['a', 'b', 'c', 'd', 'e', 'f'], _hostvars())
    assert [(g['provider'], g['label'], g['hosts'], g['guests']) for g in groups] == [
        (None, 'libvirt+vmware', ['a', 'b', 'c'],
         [{'name': 'a', 'provider': 'libvirt'}, {'name': 'b', 'provider': 'libvirt'},
          {'uuid': '42-1', 'provider': 'vmware'}]),
        # a second libvirt connection cannot join: one task holds one connection per provider
        ('libvirt', 'libvirt', ['d'], [{'name': 'd'}]),
    ]
    assert groups[0]['connection_hosts'] == ['a', 'c'] and groups[1]['connection_hosts'] == ['d']


def test_batch_of_one_provider_is_one_task_of_that_provider():
    hostvars = {h: {'__guard_target': guard_target(h, 'libvirt', connection={'uri': 'qemu:///system'})}
                for h in ('a', 'b')}
    assert [(g['provider'], g['hosts'], g['guests'], g['connection_hosts']) for g in guard_batch(['a', 'b'], hostvars)] \
        == [('libvirt', ['a', 'b'], [{'name': 'a'}, {'name': 'b'}], ['a'])]


def test_connections_giving_a_shared_option_two_values_are_not_joined():
    vm = {'hostname': 'vc', 'validate_certs': False}
    os_ = {'cloud': 'c', 'validate_certs': True}
    hostvars = {'v': {'savepoint_connection': vm, '__guard_target': guard_target('v', 'vmware', connection=vm)},
                'o': {'savepoint_connection': os_, '__guard_target': guard_target('o', 'openstack', connection=os_)}}
    assert [g['provider'] for g in guard_batch(['v', 'o'], hostvars)] == ['vmware', 'openstack']
    # given for one provider only, it would silently apply to the other too
    del os_['validate_certs']
    assert [g['provider'] for g in guard_batch(['v', 'o'], hostvars)] == ['vmware', 'openstack']
    os_['validate_certs'] = False
    hostvars['o']['__guard_target'] = guard_target('o', 'openstack', connection=os_)
    assert [g['provider'] for g in guard_batch(['v', 'o'], hostvars)] == [None]


def test_each_task_names_its_restore_points_and_hosts_named_differently_never_share_one():
    hostvars = _hostvars()
    for host in hostvars:
        hostvars[host]['__guard_snapshot_name'] = 'sp-T1'
    hostvars['b']['__guard_snapshot_name'] = 'other-T1'  # a per-host guard_snapshot_prefix
    groups = guard_batch(['a', 'b', 'c', 'd'], hostvars)
    assert [(g['provider'], g['snapshot_name'], g['hosts']) for g in groups] == [
        (None, 'sp-T1', ['a', 'c']), ('libvirt', 'other-T1', ['b']), ('libvirt', 'sp-T1', ['d'])]


def _bulk(actions, failed=False, msg='ok', rolled_back=False):
    entries = []
    for name, action in actions:
        entry = {'guest': {'name': name}, 'action': action, 'snapshot': {'name': 'sp-1', 'expires_at': None},
                 'cost': {'guest_blocked_seconds': 0.25, 'size_bytes': 1024},
                 'operations': [{'seconds': 0.5}], 'msg': '%s on %s' % (action, name)}
        if action == 'failed':
            entry['error'] = {'msg': 'disk full on %s' % name}
        if rolled_back:
            entry['rolled_back'] = True
        entries.append(entry)
    return [{'__guard_group': {'hosts': [n for n, _a in actions]}, 'results': entries, 'failed': failed,
             'msg': msg}]


def test_restore_point_of_each_host_from_one_bulk_result():
    bulk = _bulk([('a', 'created'), ('b', 'failed')], failed=True, msg='1 of 2 guests failed')
    a = guard_restore_point(bulk, 'a')
    assert a['taken'] and a['pause_seconds'] == 0.25 and a['size_bytes'] == 1024 and a['seconds'] == 0.5
    b = guard_restore_point(bulk, 'b')
    assert not b['taken'] and 'disk full on b' in b['error']


def test_rolled_back_set_and_task_failure_before_any_guest():
    rolled = guard_restore_point(_bulk([('a', 'created'), ('b', 'failed')], failed=True, msg='set failed',
                                       rolled_back=True), 'a')
    assert not rolled['taken'] and 'rolled back' in rolled['error']
    lookup = [{'__guard_group': {'hosts': ['a']}, 'failed': True, 'msg': "no guest named 'a'"}]
    assert "no guest named 'a'" in guard_restore_point(lookup, 'a')['error']
    assert 'no restore point task ran' in guard_restore_point([], 'a')['error']


def test_an_existing_same_name_restore_point_is_never_reused():
    point = guard_restore_point(_bulk([('a', 'exists')]), 'a')
    assert not point['taken'] and 'already exists' in point['error']


def test_check_mode_counts_as_taken_but_marked():
    point = guard_restore_point(_bulk([('a', 'would create')]), 'a')
    assert point['taken'] and point['check_mode']


def test_mapping_or_settings_error_wins():
    assert guard_restore_point([], 'e', guard_target('e', None))['error'].startswith('host e:')
    assert guard_restore_point([], 'a', None, 'guard_keep_for: bad')['error'] == 'guard_keep_for: bad'


def test_failed_hosts():
    assert guard_failed_hosts(['a', 'b', 'c'], {'a': {'__guard_failure': None}, 'b': {'__guard_failure': 'x'},
                                                'c': {}}) == ['b']


TAKEN = {'taken': True, 'check_mode': False, 'snapshot': 'sp-1', 'pause_seconds': 0.2, 'size_bytes': 10,
         'seconds': 0.4, 'expires_at': '2026-12-04T00:00:00Z', 'error': None}


def _state(**kw):
    base = {'host': 'a', 'target': guard_target('a', 'libvirt'), 'point': TAKEN, 'snapshot_name': 'sp-1',
            'times': {'change': 10.0, 'health': 12.5, 'done': 13.0}, 'failure': None, 'together_with': [],
            'revert': None, 'cleanup': {'changed': True}, 'health_back': None, 'keep_for': None}
    base.update(kw)
    return base


def test_outcome_succeeded_with_seconds():
    report = guard_report(_state())
    assert report['outcome'] == 'succeeded' and report['msg'] == ''
    assert report['seconds'] == {'snapshot': 0.4, 'change': 2.5, 'health': 0.5, 'revert': None}
    assert report['snapshot_pause_seconds'] == 0.2 and report['snapshot_size_bytes'] == 10


def test_outcome_reverted_names_guest_snapshot_error_and_health():
    report = guard_report(_state(failure='Break it: boom', revert={'changed': True}, health_back=True,
                                 times={'change': 1, 'done': 2, 'revert': 2, 'revert_done': 3.5}))
    assert report['outcome'] == 'reverted' and report['seconds']['revert'] == 1.5
    for words in ("guest a", "'sp-1'", 'Break it: boom', 'health is back', 'removed'):
        assert words in report['msg']


def test_outcome_reverted_together_and_health_not_back():
    report = guard_report(_state(together_with=['b'], revert={'changed': True}, health_back=False,
                                 health_error='port 80: timeout', keep_for='3d'))
    assert report['outcome'] == 'reverted' and report['kept']
    assert 'together with b' in report['msg'] and 'NOT back (port 80: timeout)' in report['msg']


def test_outcome_revert_failed_is_loud_and_keeps_the_snapshot():
    report = guard_report(_state(failure='x: y', revert={'failed': True, 'msg': "no snapshot 'sp-1'"},
                                 cleanup=None))
    assert report['outcome'] == 'revert_failed' and report['kept']
    assert 'REVERT FAILED' in report['msg'] and "whether snapshot 'sp-1' still exists" in report['msg']


def test_outcome_cleanup_failed_is_not_a_revert():
    report = guard_report(_state(cleanup={'failed': True, 'msg': 'connection refused'}))
    assert report['outcome'] == 'cleanup_failed'
    assert 'not reverted' in report['msg'] and 'connection refused' in report['msg']


def test_outcome_failed_before_snapshot():
    point = dict(TAKEN, taken=False, error='no restore point was taken: disk full')
    report = guard_report(_state(point=point, cleanup=None))
    assert report['outcome'] == 'failed_before_snapshot' and report['snapshot'] is None
    assert 'disk full' in report['msg'] and 'not made' in report['msg']


def test_check_mode_outcomes():
    point = dict(TAKEN, check_mode=True)
    assert guard_report(_state(point=point, cleanup=None))['outcome'] == 'succeeded'
    assert guard_report(_state(point=point, cleanup=None, failure='x'))['outcome'] == 'failed_before_snapshot'


def test_summary_table_counts_outcomes():
    hostvars = {'a': {'__guard_report': guard_report(_state())},
                'b': {'__guard_report': guard_report(_state(host='b', failure='x', revert={}, health_back=True))},
                'c': {}}
    lines = guard_summary(['a', 'b', 'c'], hostvars)
    assert lines[0].split()[:4] == ['host', 'guest', 'provider', 'outcome']
    assert 'succeeded' in lines[1] and 'reverted' in lines[2]
    assert lines[-1] == '2 hosts: succeeded 1, reverted 1'


def test_failure_line_has_the_last_words_of_the_output():
    from ansible_collections.savepoint.virt.plugins.filter.guard import guard_failure
    line = guard_failure({'msg': 'non-zero return code', 'stdout': 'checking\nhealth page broken'}, 'Health check')
    assert line == 'Health check: non-zero return code (health page broken)'
    assert guard_failure({'msg': 'boom'}, None) == 'a task: boom'


def test_revert_power_before_is_the_state_at_the_restore_point():
    from ansible_collections.savepoint.virt.plugins.filter.guard import guard_revert_power
    assert guard_revert_power({'power_state': 'running'}, 'before') == 'on'
    assert guard_revert_power({'power_state': 'off'}, 'before') == 'off'
    assert guard_revert_power({'power_state': 'paused'}, 'before') == 'restore'
    assert guard_revert_power({'power_state': 'running'}, 'off') == 'off'
    assert guard_revert_power({'power_state': 'running', 'memory': True}, 'before') == 'restore'
    point = guard_restore_point(_bulk([('a', 'created')]), 'a')
    assert point['power_state'] is None  # the bulk fixture records none

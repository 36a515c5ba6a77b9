"""Pure logic of the fleet playbooks: hosts -> provider batches, snapshot_info -> report rows/table/page."""

from __future__ import annotations

import json

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils import _fleet, _report
from ansible_collections.savepoint.virt.plugins.module_utils._errors import InvalidRequestError
from ansible_collections.savepoint.virt.plugins.module_utils._model import from_iso

VC = {'hostname': 'vc', 'username': 'u', 'password': 'Secret-1'}


def test_batches_group_by_provider_and_connection_in_host_order():
    hostvars = {
        'web1': {'savepoint_provider': 'vmware', 'savepoint_connection': VC},
        'db1': {'savepoint_provider': 'openstack', 'savepoint_guest_uuid': 'abc', 'savepoint_connection': {'cloud': 'c'}},
        'web2': {'savepoint_provider': 'vmware', 'savepoint_guest': 'web-two', 'savepoint_connection': dict(VC)},
        'kvm1': {'savepoint_provider': 'libvirt'},
        'web3': {'savepoint_provider': 'vmware', 'savepoint_connection': dict(VC, hostname='vc2')},
    }
    got = _fleet.batches(hostvars, ['web1', 'db1', 'web2', 'kvm1', 'web3'])
    assert [(b['provider'], b['hosts'], b['guests']) for b in got] == [
        ('vmware', ['web1', 'web2'], [{'name': 'web1'}, {'name': 'web-two'}]),
        ('openstack', ['db1'], [{'id': 'abc'}]),   # a server's UUID is its id
        ('libvirt', ['kvm1'], [{'name': 'kvm1'}]),
        ('vmware', ['web3'], [{'name': 'web3'}]),
    ]
    assert [b['connection_host'] for b in got] == ['web1', 'db1', 'kvm1', 'web3']
    assert 'Secret-1' not in json.dumps(got)   # batches become facts: no connection option in them


@pytest.mark.parametrize('hostvars, words', [
    ({'h': {}}, 'host h: savepoint_provider is not set'),
    ({'h': {'savepoint_provider': ''}}, 'host h: savepoint_provider is not set'),
    ({'h': {'savepoint_provider': 'xen'}}, "savepoint_provider 'xen' is not one of"),
    ({'h': {'savepoint_provider': 'libvirt', 'savepoint_guest': ''}}, 'host h: savepoint_guest is empty'),
    ({'h': {'savepoint_provider': 'libvirt', 'savepoint_guest': 'a', 'savepoint_guest_uuid': 'b'}}, 'not both'),
    ({'h': {'savepoint_provider': 'libvirt', 'savepoint_connection': 'qemu:///system'}}, 'must be a dict'),
])
def test_bad_host_vars_are_refused_naming_host_and_variable(hostvars, words):
    with pytest.raises(InvalidRequestError) as err:
        _fleet.batches(hostvars, list(hostvars))
    assert words in err.value.msg


def test_the_same_guest_twice_and_no_hosts_are_refused_without_leaking_the_connection():
    hostvars = {'a': {'savepoint_provider': 'vmware', 'savepoint_guest': 'x', 'savepoint_connection': VC},
                'b': {'savepoint_provider': 'vmware', 'savepoint_guest': 'x', 'savepoint_connection': VC}}
    with pytest.raises(InvalidRequestError) as err:
        _fleet.batches(hostvars, ['a', 'b'])
    assert 'hosts a and b name the same guest x' in err.value.msg and 'Secret-1' not in err.value.msg
    with pytest.raises(InvalidRequestError, match='matched no inventory host'):
        _fleet.batches(hostvars, [])


NOW = from_iso('2026-03-10T12:00:00Z')
INFO = {'provider': 'vmware', 'guests': [
    {'guest': {'name': 'web1', 'id': 'vm-1'}, 'snapshots': [
        {'name': 'old', 'id': 's1', 'created_at': '2026-03-01T12:00:00Z', 'expires_at': '2026-03-02T00:00:00Z',
         'owner': 'savepoint.virt', 'size_bytes': 3 * 1024 ** 3, 'power_state': 'running', 'memory': True},
        {'name': 'hand<b>', 'id': 's2', 'created_at': '2026-03-10T11:58:30Z', 'current': True,
         'size_bytes': None, 'power_state': 'off'}]},
    {'guest': {'name': 'web-two', 'id': 'vm-2'}, 'snapshots': []}]}
BATCH = {'provider': 'vmware', 'hosts': ['web1', 'web2'], 'guests': [{'name': 'web1'}, {'name': 'web-two'}],
         'info': INFO}


def test_rows_compute_age_size_expiry_and_map_hosts():
    rows = _report.rows([BATCH], NOW)
    assert [(r['host'], r['name'], r['age'], r['size'], r['expired'], r['status']) for r in rows] == [
        ('web1', 'old', '9d', '3.0 GiB', True, 'EXPIRED'),
        ('web1', 'hand<b>', '1m 30s', 'unknown', False, 'not owned'),
    ]
    assert rows[0]['age_seconds'] == 9 * 86400 and rows[0]['pause'] == 'unknown (running + memory)'
    assert rows[1]['pause'] == 'none (guest off)'
    doc = json.loads(_report.as_json(rows, NOW))
    assert doc['count'] == 2 and doc['expired'] == 1 and doc['generated_at'] == '2026-03-10T12:00:00Z'


def test_table_and_page():
    rows = _report.rows([BATCH], NOW)
    text = _report.table(rows).split('\n')
    assert text[0].split()[:4] == ['host', 'guest', 'provider', 'snapshot'] and set(text[1]) <= {'-', ' '}
    assert 'EXPIRED' in text[2] and 'hand<b> *' in text[3] and text[-1] == '2 snapshots, 1 expired'
    assert _report.table([]) == 'no snapshots on these guests'
    page = _report.page(rows, NOW)
    assert page.count('<tr class="expired"') == 1 and page.count('<tr class="ok"') == 1
    assert 'hand&lt;b&gt;' in page and 'hand<b>' not in page      # escaped: a name cannot inject markup
    assert 'data-sort="%d"' % (9 * 86400) in page and "default-src 'none'" in page


def test_prune_lines_say_what_went_or_would_go():
    result = {'provider': 'libvirt', 'results': [
        {'guest': {'name': 'g1'}, 'action': 'would delete', 'removed': [{'name': 'a'}, {'name': 'b'}], 'msg': 'm1'},
        {'guest': {'name': 'g2'}, 'action': 'kept', 'removed': [], 'msg': 'no owned snapshot matches'}]}
    assert _report.prune_lines(result, True) == ['libvirt g1: would remove a, b -- m1',
                                                 'libvirt g2: no owned snapshot matches']
    result['results'][0]['action'] = 'deleted'
    assert _report.prune_lines(result)[0] == 'libvirt g1: removed a, b -- m1'


@pytest.mark.parametrize('seconds, text', [(None, 'unknown'), (0, '0s'), (59, '59s'), (61, '1m 1s'),
                                           (3600, '1h'), (90061, '1d 1h')])
def test_human_age(seconds, text):
    assert _report.human_age(seconds) == text


def test_pause_when_taken_is_shown_from_the_marker_and_unknown_otherwise():
    snaps = [{'name': 'ours', 'id': 'a', 'owner': 'savepoint.virt', 'power_state': 'running', 'memory': True,
              'guest_blocked_seconds': 0.25},
             {'name': 'ours-off', 'id': 'b', 'owner': 'savepoint.virt', 'power_state': 'off',
              'guest_blocked_seconds': 0.0},
             {'name': 'foreign', 'id': 'c', 'power_state': 'running', 'memory': False}]
    info = {'provider': 'libvirt', 'guests': [{'guest': {'name': 'g', 'id': 'g'}, 'snapshots': snaps}]}
    rows = {r['name']: r for r in _report.rows([{'provider': 'libvirt', 'hosts': ['g'], 'guests': [{'name': 'g'}],
                                                'info': info}], NOW)}
    assert (rows['ours']['pause'], rows['ours']['pause_seconds']) == ('0.250s', 0.25)
    assert (rows['ours-off']['pause'], rows['ours-off']['pause_seconds']) == ('0.000s', 0.0)
    assert rows['foreign']['pause'] == 'unknown (running)' and rows['foreign']['pause_seconds'] is None

"""The guard role and the patch_rollout playbook through ansible-playbook, on real libvirt/QEMU guests.

Every inventory host is a guest; the restore points are real libvirt snapshots.
These guests have no OS: the change and the health check reach the guest's disk
from the controller (ansible_connection: local), and the disk pattern is the
"file" the change writes: 0xab before, 0xcd a good change, 0xee a change that
breaks the health check.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml

from scripts.ansible_run import run_playbook
from services.libvirt import TinyGuest

pytestmark = pytest.mark.qemu
HERE = Path(__file__).resolve().parent / 'playbooks' / 'guard'
BEFORE, GOOD, BROKEN = 0xab, 0xcd, 0xee
TINY_GUEST_PREFIX = 'sp-guard'  # names of the guests the shared tiny_guests fixture makes here


@pytest.fixture
def guests(tiny_guests):
    def make(count: int) -> List[TinyGuest]:
        made = [tiny_guests() for _index in range(count)]
        for guest in made:
            guest.write_pattern(BEFORE)
        return made
    return make


def inventory(tmp_path: Path, guests: List[TinyGuest], extra_hosts: Optional[Dict[str, Any]] = None) -> Path:
    hosts: Dict[str, Any] = {g.name: {} for g in guests}
    hosts.update(extra_hosts or {})
    path = tmp_path / 'inventory.yml'
    path.write_text(yaml.safe_dump({'all': {'hosts': hosts, 'vars': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'savepoint_provider': 'libvirt', 'savepoint_connection': {'uri': 'qemu:///system'}}}}, sort_keys=False))
    return path


def run(tmp_path, guests, playbook='guard.yml', check=False, extra_hosts=None, env=None, **extra):
    extra_vars = {'guard_change_tasks': str(HERE / 'change.yml'), 'guard_test_helper': str(HERE / 'disk.py'),
                  'guard_health_checks': [{'command': '%s %s healthy {{ inventory_hostname }}'
                                           % (sys.executable, HERE / 'disk.py'), 'retries': 1, 'delay': 1}]}
    extra_vars.update(extra)
    book = playbook if '.' in playbook and '/' not in playbook and not playbook.endswith('.yml') \
        else str(HERE / playbook)
    return run_playbook(book, extra_vars, check=check,  # type: ignore[arg-type]
                        env={'ANSIBLE_INVENTORY': str(inventory(tmp_path, guests, extra_hosts)),
                             'ANSIBLE_SHOW_CUSTOM_STATS': 'true', **(env or {})})


def outcomes(result) -> Dict[str, Dict[str, Any]]:
    return result.data.get('global_custom_stats', {}).get('savepoint_guard', {})


def snapshots(guest: TinyGuest) -> List[str]:
    return sorted(s.getName() for s in guest.dom.listAllSnapshots(0))


def failures(result) -> Dict[str, str]:
    found = {}
    for task in result.tasks():
        if task['name'].endswith('Fail the host whose change did not succeed') and task['result'].get('failed'):
            found[task['host']] = task['result']['msg']
    return found


def summary(result) -> List[str]:
    lines: List[str] = []
    for task in result.tasks():
        if task['name'].endswith('Summary of the guarded change so far'):
            lines = task['result']['msg']
    return lines


def test_rollout_in_batches_reverts_only_the_broken_host(tmp_path, guests):
    good1, bad, good2 = guests(3)
    result = run(tmp_path, [good1, bad, good2], playbook='savepoint.virt.patch_rollout',
                 rollout_serial=2, guard_test_break=[bad.name])
    stats = outcomes(result)
    assert result.rc != 0
    assert {h: s['outcome'] for h, s in stats.items()} == {
        good1.name: 'succeeded', bad.name: 'reverted', good2.name: 'succeeded'}, [s['msg'] for s in stats.values()]
    # only the broken host was reverted: its change is gone, the others keep theirs
    assert bad.has_pattern(BEFORE) and not bad.has_pattern(BROKEN)
    assert good1.has_pattern(GOOD) and good2.has_pattern(GOOD)
    # no restore point left anywhere
    assert [snapshots(g) for g in (good1, bad, good2)] == [[], [], []]
    # the run fails naming the reverted host, with one message saying it all
    msg = failures(result)[bad.name]
    assert list(failures(result)) == [bad.name]
    snap = stats[bad.name]['snapshot']
    assert snap.startswith('savepoint-guard-') and all(s['snapshot'] == snap for s in stats.values())
    for words in ('guest %s was reverted' % bad.name, snap, 'health page broken', 'health is back'):
        assert words in msg, msg
    assert stats[bad.name]['health_back'] is True
    for name, stat in stats.items():
        assert stat['provider'] == 'libvirt' and stat['guest'] == name
        assert stat['snapshot_pause_seconds'] is not None and stat['snapshot_pause_seconds'] >= 0
        assert stat['seconds']['snapshot'] > 0 and stat['seconds']['change'] > 0
    assert stats[bad.name]['seconds']['revert'] > 0 and stats[good1.name]['seconds']['revert'] is None
    table = summary(result)
    assert table[-1] == '3 hosts: succeeded 2, reverted 1', table
    # the two batches: the restore points of a batch are one task (per provider), not one per host
    bulk = [t for t in result.tasks() if t['name'].endswith("Take the batch's restore points in one task")]
    assert len(bulk) == 2 and [len(t['result']['results']) for t in bulk] == [1, 1]
    assert [len(t['result']['results'][0]['results']) for t in bulk] == [2, 1]


def test_one_restore_point_name_for_the_run_even_when_its_hosts_are_set_up_seconds_apart(tmp_path, guests):
    """The run id was templated on each host with now(): hosts set up on either side of a second
    boundary got two names, the batch's one take used the first host's for both guests, and the
    other host was reverted to a snapshot that did not exist -- its restore point left behind (CI,
    1 run in 4 under load). One fork and a connection that takes over a second to work out make
    the hosts' set-up seconds apart, every time."""
    good, bad = guests(2)
    slow = {'savepoint_connection': {'uri': "qemu:///system{{ lookup('ansible.builtin.pipe', 'sleep 1.1') }}"}}
    result = run(tmp_path, [good, bad], extra_hosts={good.name: slow, bad.name: slow},
                 env={'ANSIBLE_FORKS': '1'}, guard_test_break=[bad.name])
    stats = outcomes(result)
    assert {h: s['outcome'] for h, s in stats.items()} == {good.name: 'succeeded', bad.name: 'reverted'}, \
        [s['msg'] for s in stats.values()]
    assert stats[good.name]['snapshot'] == stats[bad.name]['snapshot']
    assert bad.has_pattern(BEFORE) and good.has_pattern(GOOD)
    assert [snapshots(g) for g in (good, bad)] == [[], []]


def test_revert_together_reverts_the_whole_batch(tmp_path, guests):
    app, db = guests(2)
    result = run(tmp_path, [app, db], guard_revert_together=True, guard_test_fail=[db.name])
    stats = outcomes(result)
    assert result.rc != 0
    assert {h: s['outcome'] for h, s in stats.items()} == {app.name: 'reverted', db.name: 'reverted'}
    assert app.has_pattern(BEFORE) and db.has_pattern(BEFORE)
    assert 'reverted together with %s' % db.name in failures(result)[app.name]
    assert 'failed on purpose' in failures(result)[db.name]
    assert snapshots(app) == [] and snapshots(db) == []


def test_keep_for_keeps_the_restore_point_with_its_expiry(tmp_path, guests):
    guest, = guests(1)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)  # expires_at has whole seconds
    result = run(tmp_path, [guest], guard_keep_for='3d')
    after = datetime.datetime.now(datetime.timezone.utc)
    stats = outcomes(result)[guest.name]
    assert result.rc == 0, failures(result)
    assert stats['outcome'] == 'succeeded' and stats['kept'] is True
    assert snapshots(guest) == [stats['snapshot']] and guest.has_pattern(GOOD)
    expires = datetime.datetime.fromisoformat(stats['expires_at'].replace('Z', '+00:00'))
    # three days from when the restore point was taken, which was during the run
    assert before + datetime.timedelta(days=3) <= expires <= after + datetime.timedelta(days=3)
    # prune honours it: not expired yet, so nothing is removed
    pruned = run_playbook(HERE / 'prune.yml', {'guest': guest.name})
    assert pruned.rc == 0, pruned.result('Prune expired restore points')
    assert pruned.result('Prune expired restore points')['results'][0]['action'] == 'kept'
    assert snapshots(guest) == [stats['snapshot']]


def test_check_mode_takes_no_snapshot_and_changes_nothing(tmp_path, guests):
    guest, = guests(1)
    result = run(tmp_path, [guest], check=True)
    stats = outcomes(result)[guest.name]
    assert result.rc == 0, failures(result)
    assert stats['outcome'] == 'succeeded' and stats['check_mode'] is True
    assert snapshots(guest) == [] and guest.has_pattern(BEFORE)


def test_max_fail_percentage_stops_the_rollout_after_a_bad_batch(tmp_path, guests):
    bad, same_batch, later = guests(3)
    result = run(tmp_path, [bad, same_batch, later], playbook='savepoint.virt.patch_rollout', rollout_serial=2,
                 rollout_max_fail_percentage=0, guard_test_fail=[bad.name])
    stats = outcomes(result)
    assert result.rc != 0
    assert {h: s['outcome'] for h, s in stats.items()} == {bad.name: 'reverted', same_batch.name: 'succeeded'}
    assert bad.has_pattern(BEFORE) and same_batch.has_pattern(GOOD)
    # the later batch never ran: untouched, no restore point
    assert later.has_pattern(BEFORE) and snapshots(later) == []


def test_failed_revert_is_loud_and_recorded(tmp_path, guests):
    guest, = guests(1)
    result = run(tmp_path, [guest], guard_test_steal=[guest.name], guard_test_fail=[guest.name])
    stats = outcomes(result)[guest.name]
    assert result.rc != 0
    assert stats['outcome'] == 'revert_failed'
    msg = failures(result)[guest.name]
    assert 'REVERT FAILED' in msg and 'recover it by hand' in msg
    assert "whether snapshot '%s' still exists" % stats['snapshot'] in msg
    assert 'failed on purpose' in msg


def test_failed_cleanup_never_reverts(tmp_path, guests):
    guest, = guests(1)
    result = run(tmp_path, [guest], guard_test_lose_api=[guest.name])
    stats = outcomes(result)[guest.name]
    assert result.rc != 0
    assert stats['outcome'] == 'cleanup_failed'
    assert guest.has_pattern(GOOD), 'a failed cleanup must not undo a successful change'
    assert snapshots(guest) == [stats['snapshot']]
    assert 'not reverted' in failures(result)[guest.name]
    assert not [t for t in result.tasks() if t['name'].endswith('Revert to the restore point')
                and not t['result'].get('skipped')]


def test_bad_mapping_fails_before_any_snapshot_and_spares_the_others(tmp_path, guests):
    guest, = guests(1)
    result = run(tmp_path, [guest], extra_hosts={'sp-guard-nomap': {'savepoint_provider': 'xen'}})
    stats = outcomes(result)
    assert result.rc != 0
    assert stats['sp-guard-nomap']['outcome'] == 'failed_before_snapshot'
    assert "savepoint_provider is 'xen'" in failures(result)['sp-guard-nomap']
    assert stats[guest.name]['outcome'] == 'succeeded' and guest.has_pattern(GOOD)


def test_a_later_run_never_reuses_an_earlier_restore_point(tmp_path, guests):
    guest, = guests(1)
    first = run(tmp_path, [guest], guard_keep_for='1h')
    second = run(tmp_path, [guest], guard_keep_for='1h')
    names = [outcomes(r)[guest.name]['snapshot'] for r in (first, second)]
    assert first.rc == 0 and second.rc == 0 and names[0] != names[1]
    assert snapshots(guest) == sorted(names)

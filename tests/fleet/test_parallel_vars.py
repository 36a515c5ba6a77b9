"""``guard_parallel`` and ``prune_parallel`` through the patch_rollout and prune playbooks (run by FQCN),
on libvirt's test driver: the value reaches the module's ``parallel`` option, unset stays unset (the
provider's default), and 0 or an empty value stops the run before any module writes, naming the variable.

The test driver starts with its guest 'test' in every process, so each module run sees it fresh: enough
to observe the modules' invocation; the real-service behaviour of ``parallel`` is tested elsewhere
(tests/unit/test_parallel.py, tests/vmware/test_vmware_parallel.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from .helpers import run_fqcn, write_inventory

pytestmark = pytest.mark.playbook

TEST_DRIVER = {'uri': 'test:///default'}
CHANGE = Path(__file__).resolve().parents[1] / 'integration' / 'playbooks' / 'guard' / 'local_change.yml'
BULK = "Take the batch's restore points in one task"


def prune_inventory(tmp_path: Path) -> Path:
    return write_inventory(tmp_path, {'a': {'savepoint_provider': 'libvirt', 'savepoint_connection': TEST_DRIVER,
                                            'savepoint_guest': 'test'}})


def guard_inventory(tmp_path: Path) -> Path:
    return write_inventory(tmp_path, {'test': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'savepoint_provider': 'libvirt', 'savepoint_connection': TEST_DRIVER}})


def rollout(tmp_path: Path, **extra: Any):
    return run_fqcn('patch_rollout', guard_inventory(tmp_path),
                    dict(extra, target_hosts='fleet', guard_change_tasks=str(CHANGE), guard_wait_for_connection=False),
                    env={'ANSIBLE_SHOW_CUSTOM_STATS': 'true'})


def module_invocations(run) -> List[Dict[str, Any]]:
    """The module arguments of every savepoint.virt module that ran (loop items included)."""
    found = []
    for task in run.tasks():
        for result in [task['result']] + [r for r in task['result'].get('results', []) if isinstance(r, dict)]:
            if 'invocation' in result and 'provider' in result.get('invocation', {}).get('module_args', {}):
                found.append(result['invocation']['module_args'])
    return found


@pytest.mark.parametrize('value, expected', [(2, 2), ('3', 3), (None, None)])
def test_prune_parallel_reaches_the_module(tmp_path, value, expected):
    extra = {'target_hosts': 'fleet'}
    if value is not None:
        extra['prune_parallel'] = value
    run = run_fqcn('prune', prune_inventory(tmp_path), extra)
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    calls = module_invocations(run)
    assert [c['state'] for c in calls] == ['pruned']
    assert calls[0]['parallel'] == expected   # None: omitted, the module takes the provider's default


@pytest.mark.parametrize('value, words', [
    (0, 'prune_parallel must be between 1 (one guest after the other) and 1000, not 0'),
    (-2, 'prune_parallel must be between 1'),
    (1001, 'prune_parallel must be between 1 (one guest after the other) and 1000, not 1001'),
    ('0', 'prune_parallel must be between 1'),
    ('', "argument 'prune_parallel' is of type str and we were unable to convert to int"),
    ('four', "argument 'prune_parallel' is of type str and we were unable to convert to int"),
])
def test_bad_prune_parallel_stops_before_any_module(tmp_path, value, words):
    run = run_fqcn('prune', prune_inventory(tmp_path), {'target_hosts': 'fleet', 'prune_parallel': value})
    assert run.rc != 0
    failed = [t for t in run.tasks() if t['result'].get('failed')]
    assert failed and words in failed[0]['result']['msg'], json.dumps(failed)[-2000:]
    assert module_invocations(run) == []


def test_guard_parallel_reaches_the_batch_snapshot_task(tmp_path):
    run = rollout(tmp_path, guard_parallel=2)
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    bulk = run.result(BULK)['results']
    assert [r['invocation']['module_args']['parallel'] for r in bulk] == [2]
    assert [r['action'] for r in bulk[0]['results']] == ['created']
    assert run.data['global_custom_stats']['savepoint_guard']['test']['outcome'] == 'succeeded'


def test_guard_parallel_unset_leaves_the_provider_default(tmp_path):
    run = rollout(tmp_path)
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    assert [r['invocation']['module_args']['parallel'] for r in run.result(BULK)['results']] == [None]


def test_guard_parallel_0_fails_the_hosts_before_any_restore_point(tmp_path):
    run = rollout(tmp_path, guard_parallel=0)
    assert run.rc != 0
    stats = run.data['global_custom_stats']['savepoint_guard']['test']
    assert stats['outcome'] == 'failed_before_snapshot'
    assert 'guard_parallel must be between 1 (one guest after the other) and 1000, not 0' in stats['msg']
    assert 'the change was not made' in stats['msg']
    assert module_invocations(run) == []


def test_guard_parallel_empty_is_refused_by_the_argument_spec(tmp_path):
    run = rollout(tmp_path, guard_parallel='')
    assert run.rc != 0
    failed = [t for t in run.tasks() if t['result'].get('failed')]
    assert failed and "argument 'guard_parallel' is of type str" in failed[0]['result']['msg'], json.dumps(failed)
    assert module_invocations(run) == []

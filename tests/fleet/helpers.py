"""Run the fleet playbooks by FQCN against an inventory written for the test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

from scripts.ansible_run import REPO, VENV_BIN, PlaybookRun, collection_env


def write_inventory(tmp_path: Path, hosts: Dict[str, Dict[str, Any]]) -> Path:
    """A YAML (JSON) inventory: group 'fleet' with these hosts and their host vars."""
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'all': {'children': {'fleet': {'hosts': hosts}}}}))
    return path


def run_fqcn(playbook: str, inventory: Path, extra_vars: Optional[Dict[str, Any]] = None, check: bool = False,
             json_output: bool = True, timeout: int = 900, env: Optional[Dict[str, str]] = None):
    """ansible-playbook savepoint.virt.<playbook>; JSON callback -> PlaybookRun, else the CompletedProcess."""
    cmd: List[str] = [str(VENV_BIN / 'ansible-playbook'), 'savepoint.virt.%s' % playbook, '-i', str(inventory)]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    run_env = collection_env()
    if json_output:
        run_env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.json'
    run_env.update(env or {})
    proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
                          check=False)
    return PlaybookRun(proc) if json_output else proc


def prune_results(run: PlaybookRun) -> Dict[str, Dict[str, Any]]:
    """provider -> the prune module result of that provider's task."""
    found = {}
    for task in run.tasks():
        if 'Prune owned snapshots on' in task['name']:
            found[task['result'].get('provider')] = task['result']
    return found


def engine_create(backend, ref, name: str, owner: str = 'savepoint.virt', expires_in: Any = None,
                  timeout: float = 300.0) -> Dict[str, Any]:
    """Take an owned snapshot through the engine (as a module would), on an open backend."""
    from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
    from ansible_collections.savepoint.virt.plugins.module_utils._model import SnapshotSpec
    from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
    from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

    spec = SnapshotSpec(name=name, marker=make_marker(owner, 'tests/fleet', expires_in))
    request = Request(state='present', guests=[ref], snapshot_name=name, spec=spec)
    result = SnapshotEngine(backend, wait_policy=WaitPolicy(timeout=timeout)).run(request)
    assert result['changed'], result
    return result

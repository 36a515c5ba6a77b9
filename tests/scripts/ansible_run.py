"""Run ansible-playbook as users do, against this checkout, and read its results.

Shared by the demo, the integration tests and the benchmarks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / 'build' / 'collections'
VENV_BIN = Path(sys.executable).parent


def collection_env() -> Dict[str, str]:
    link = COLLECTIONS / 'ansible_collections' / 'savepoint' / 'virt'
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(REPO, target_is_directory=True)
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': str(COLLECTIONS),
        # Modules must run in this venv (where libvirt-python & co. are), never a pyenv shim.
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ANSIBLE_LOCALHOST_WARNING': 'false',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': 'false',
    })
    return env


class PlaybookRun:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.rc = proc.returncode
        self.stderr = proc.stderr
        try:
            self.data = json.loads(proc.stdout)
        except ValueError:
            raise RuntimeError('ansible-playbook printed no JSON (rc %s):\n%s\n%s'
                               % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))

    def tasks(self) -> List[Dict[str, Any]]:
        found = []
        for play in self.data.get('plays', []):
            for task in play.get('tasks', []):
                for host, result in task.get('hosts', {}).items():
                    found.append({'name': task['task']['name'], 'host': host, 'result': result})
        return found

    def result(self, name: str, occurrence: int = 0) -> Dict[str, Any]:
        # Tasks from roles are named 'role : task'.
        matches = [t['result'] for t in self.tasks() if t['name'] == name or t['name'].endswith(' : ' + name)]
        if len(matches) <= occurrence:
            raise KeyError('no result for task %r; tasks: %s' % (name, [t['name'] for t in self.tasks()]))
        return matches[occurrence]

    def stats(self) -> Dict[str, Any]:
        return self.data.get('stats', {})


def run_playbook(playbook: Path, extra_vars: Optional[Dict[str, Any]] = None, check: bool = False,
                 diff: bool = False, env: Optional[Dict[str, str]] = None, timeout: int = 600) -> PlaybookRun:
    cmd = [str(VENV_BIN / 'ansible-playbook'), str(playbook)]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    run_env = collection_env()
    run_env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.json'
    run_env.update(env or {})
    proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
                          check=False)
    return PlaybookRun(proc)

"""ansible-playbook runs of the safety suites: started side by side, killed, read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

from scripts.ansible_run import REPO, VENV_BIN, collection_env

CALL = Path(__file__).resolve().parent / 'playbooks' / 'call.yml'


class Run:
    """One ansible-playbook process (own process group, so that a kill takes the module with it)."""

    def __init__(self, args: Dict[str, Any], env: Optional[Dict[str, str]] = None, verbose: bool = False,
                 callback: str = 'ansible.builtin.json', playbook: Path = CALL,
                 extra_vars: Optional[Dict[str, Any]] = None) -> None:
        cmd = [str(VENV_BIN / 'ansible-playbook'), str(playbook), '-e', json.dumps(extra_vars or {'call_args': args})]
        if verbose:
            cmd.append('-vvv')
        run_env = collection_env()
        run_env['ANSIBLE_STDOUT_CALLBACK'] = callback
        run_env.update(env or {})
        self.proc = subprocess.Popen(cmd, env=run_env, cwd=str(REPO), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.stdout = ''
        self.stderr = ''
        self.rc: Optional[int] = None

    def wait(self, timeout: float) -> 'Run':
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        self.rc = self.proc.returncode
        return self

    def tree(self) -> List[int]:
        """This run's processes: ansible-playbook and everything below it (the module may have its own
        session, so the process group alone would miss it)."""
        children: Dict[int, List[int]] = {}
        for entry in Path('/proc').iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / 'stat').read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(')', 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def kill(self) -> None:
        """SIGKILL the whole run at once, module included (a run that dies holding a lease)."""
        for pid in self.tree():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait(60)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def result(self) -> Dict[str, Any]:
        # -vvv prints its header lines before the JSON document
        start = 0 if self.stdout.startswith('{') else self.stdout.index('\n{') + 1
        data = json.loads(self.stdout[start:])
        for play in data['plays']:
            for task in play['tasks']:
                result = task['hosts'].get('localhost', {})
                if task['task']['name'].startswith('Call the') and not result.get('skipped'):
                    return result
        raise KeyError('no module result in:\n%s' % self.stdout[-2000:])

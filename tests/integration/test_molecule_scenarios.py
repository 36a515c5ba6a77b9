"""The collection's own molecule scenarios (extensions/molecule/guard_success, guard_revert,
guard_revert_fails, prune_foreign), each `molecule test -s <scenario>` on one tiny real Linux
guest that the scenario's create boots and its destroy undefines (tests/services/molecule_guest.py).

What each scenario asserts is in its verify.yml; here: every action of its test sequence
succeeded, the guard role's set_stats outcome is the one the scenario is about, and no domain
of the run is left on libvirtd afterwards (destroy ran, even after a failure).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import List

import libvirt
import pytest
import yaml

from scripts.ansible_run import REPO, collection_env
from services.libvirt import ensure_daemon

pytestmark = pytest.mark.qemu

SCENARIOS = {
    # scenario: the guard role's outcome in its set_stats (None: the scenario does not run the guard)
    'guard_success': 'succeeded',
    'guard_revert': 'reverted',
    'guard_revert_fails': 'revert_failed',
    'prune_foreign': None,
}


def domains(prefix: str) -> List[str]:
    conn = libvirt.open('qemu:///system')
    try:
        return sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix))
    finally:
        conn.close()


def remove_domains(prefix: str) -> None:
    """Clean-up of last resort, after the assertion that destroy left nothing."""
    from services.linux_guest import BUILD_DIR, LinuxGuest, _connect
    for name in domains(prefix):
        guest = LinuxGuest()
        guest.name, guest.run_dir, guest._conn = name, BUILD_DIR / 'run' / name, _connect()
        guest.destroy()


@pytest.mark.parametrize('scenario', sorted(SCENARIOS))
def test_collection_scenario(scenario):
    ensure_daemon(sys.executable)
    prefix = 'sp-m%s' % uuid.uuid4().hex[:4]   # this run's domains: <prefix>-<scenario>-<8 hex>
    env = collection_env()
    env.pop('ANSIBLE_PYTHON_INTERPRETER', None)  # localhost runs the playbook's Python
    env['PATH'] = '%s%s%s' % (Path(sys.executable).parent, os.pathsep, env.get('PATH', ''))
    env.update({'SAVEPOINT_MOLECULE_GUEST_PREFIX': prefix, 'ANSIBLE_NOCOLOR': '1', 'NO_COLOR': '1'})
    try:
        proc = subprocess.run([str(Path(sys.executable).parent / 'molecule'), 'test', '-s', scenario],
                              cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
        output = re.sub(r'\x1b\[[0-9;]*m', '', proc.stdout + proc.stderr)
        left = domains(prefix)
    finally:
        remove_domains(prefix)
    log = REPO / 'tests' / 'output' / 'molecule' / ('%s.log' % scenario)   # all of it, for a failure
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(output)
    assert proc.returncode == 0, '%s\n(all of it in %s)' % (output[-8000:], log)
    sequence = yaml.safe_load((REPO / 'extensions/molecule' / scenario / 'molecule.yml').read_text())[
        'scenario']['test_sequence']
    summary = r'actions=%d\s+successful=%d\s.*\sfailed=0\b' % (len(sequence), len(sequence))
    assert re.search(summary, output), output[-3000:]
    # a guest was really booted and really destroyed
    assert re.search(r'guest %s-%s-[0-9a-f]{8}: ssh -p \d+' % (prefix, scenario.replace('_', '-')), output), \
        output[-3000:]
    assert left == [], 'destroy left domains %s' % left
    outcome = SCENARIOS[scenario]
    outcomes = re.findall(r'"outcome": "([a-z_]+)"', output)
    if outcome is None:
        assert outcomes == [], outcomes
    else:
        # the set_stats of the one guard run (ANSIBLE_SHOW_CUSTOM_STATS in the scenario)
        assert outcomes == [outcome], output[-3000:]

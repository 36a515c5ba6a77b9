"""The role's molecule scenario (extensions/molecule/default) on the real local libvirtd."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.ansible_run import REPO, collection_env
from services.libvirt import ensure_daemon

pytestmark = pytest.mark.qemu


def test_guard_role_with_molecule():
    ensure_daemon(sys.executable)
    env = collection_env()
    env['PATH'] = '%s%s%s' % (Path(sys.executable).parent, os.pathsep, env.get('PATH', ''))
    env.pop('ANSIBLE_PYTHON_INTERPRETER', None)  # the scenario's inventory names the interpreter
    proc = subprocess.run([str(Path(sys.executable).parent / 'molecule'), 'test'], cwd=str(REPO), env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # every action of the scenario's test sequence succeeded, however many the scenario has
    scenario = yaml.safe_load((REPO / 'extensions/molecule/default/molecule.yml').read_text())['scenario']
    sequence = scenario['test_sequence']
    plain = re.sub(r'\x1b\[[0-9;]*m', '', output)  # molecule colours its summary line
    summary = r'actions=%d\s+successful=%d\s.*\sfailed=0\b' % (len(sequence), len(sequence))
    assert re.search(summary, plain), plain[-2000:]

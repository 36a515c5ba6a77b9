"""The role's molecule scenario (extensions/molecule/default) on the real local libvirtd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert 'successful=6' in output and 'failed=0' in output, output[-2000:]

"""The EE's run-time package list is complete: a fresh Debian root (debootstrap minbase) with
only python3 and bindep's run-time packages -- no -dev package, no compiler -- plus the wheels
built on this host imports all three SDKs, opens a libvirt connection and has an ssh client.
Then the libvirt client library is removed again and `import libvirt` must break: the list is
not just sufficient by accident of the base system.

Slow (debootstrap once, cached under .cache/ee-chroot; libvirt-python compiled every run):
marker `ee`, run by `make test`. Needs root (chroot) and the Debian package index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chroot  # noqa: E402
import ee_context  # noqa: E402

pytestmark = pytest.mark.ee

PROBE = r'''
import shutil, sys
import libvirt, pyVmomi, openstack, openstack.version
conn = libvirt.open('test:///default')          # the client library's own test driver: no daemon
print('domains', len(conn.listAllDomains()))
conn.close()
from pyVmomi import vim
print('vim', vim.VirtualMachine.__name__)
print('openstack', openstack.version.__version__)
print('libvirt', libvirt.getVersion())
print('ssh', shutil.which('ssh'))
'''


@pytest.fixture(scope='module')
def ee(tmp_path_factory):
    out = tmp_path_factory.mktemp('ee')
    return out, ee_context.main(out)['execution-environment']


def test_runtime_packages_alone_import_all_three_sdks(ee, tmp_path):
    if os.geteuid() != 0:
        pytest.fail('this test needs root for debootstrap and chroot')
    out, summary = ee
    packages = summary['system']['dpkg']['run']
    root = chroot.fresh_copy(chroot.runtime_root(packages), tmp_path / 'root')

    installed = chroot.installed_packages(root)
    assert set(packages) <= set(installed)
    dev = [p for p in installed if p.endswith('-dev') or p in ('gcc', 'cpp', 'pkg-config', 'pkgconf')]
    assert dev == [], 'the run-time root must hold no build tool chain: %s' % dev

    version = chroot.run_in(root, ['python3', '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'])
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == '%d.%d' % sys.version_info[:2], (
        'wheels are built with this host Python; the root has Python %s' % version.stdout)

    # the builder stage: wheels of everything the introspection resolved, built on the host
    # (libvirt-python compiled here against the host's libvirt-dev)
    wheels = root / 'wheels'
    wheels.mkdir()
    requirements = out / 'execution-environment' / 'requirements.txt'
    shutil.copy(requirements, wheels / 'requirements.txt')
    for cmd in ([sys.executable, '-m', 'pip', 'wheel', '-q', '-w', str(wheels), '-r', str(requirements)],
                [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:',
                 '-d', str(wheels), 'pip']):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(wheels.glob('libvirt_python-*.whl')), sorted(p.name for p in wheels.iterdir())
    (pip_wheel,) = wheels.glob('pip-*.whl')

    # the final stage: install the wheels only (no index, nothing compiled)
    proc = chroot.run_in(root, ['python3', '/wheels/%s/pip' % pip_wheel.name, 'install', '-q', '--no-index',
                                '--find-links', '/wheels', '--break-system-packages', '--no-compile',
                                '-r', '/wheels/requirements.txt'])
    assert proc.returncode == 0, proc.stdout + proc.stderr

    probe = chroot.run_in(root, ['python3', '-c', PROBE])
    assert probe.returncode == 0, probe.stdout + probe.stderr
    lines = dict(line.split(' ', 1) for line in probe.stdout.splitlines())
    assert lines['domains'] == '1'      # test:///default has one domain
    assert lines['vim'] == 'vim.VirtualMachine'
    assert lines['ssh'] == '/usr/bin/ssh'

    # negative control: without the run-time library libvirt-python cannot load
    proc = chroot.run_in(root, ['dpkg', '--remove', '--force-depends', 'libvirt0'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = chroot.run_in(root, ['python3', '-c', 'import libvirt'])
    assert broken.returncode != 0 and 'libvirt.so.0' in broken.stderr, broken.stdout + broken.stderr

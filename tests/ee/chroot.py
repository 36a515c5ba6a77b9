"""A fresh Debian root holding only an EE's run-time packages: where a missing run-time
dependency shows (no -dev package, no compiler, nothing else from this host).

    base = runtime_root(['libvirt0', 'openssh-client'])   # debootstrap --variant=minbase, cached
    root = fresh_copy(base, tmp_path / 'root')             # a throw-away copy for one test
    run_in(root, ['python3', '-c', 'import libvirt'])

The base is cached under .cache/ee-chroot/<suite>-<hash of the package list>/ (never committed),
built from the Debian package index of this host's own release, so the libvirt client library
there is the one the host compiled libvirt-python against.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import List, Sequence

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / '.cache' / 'ee-chroot'
MIRROR = os.environ.get('SAVEPOINT_DEBIAN_MIRROR', 'http://deb.debian.org/debian')
#: what every EE base image has besides the bindep packages
BASE_PACKAGES = ('python3',)


class ChrootError(RuntimeError):
    pass


def host_suite() -> str:
    for line in Path('/etc/os-release').read_text().splitlines():
        if line.startswith('VERSION_CODENAME='):
            return line.split('=', 1)[1].strip().strip('"')
    raise ChrootError('cannot tell the Debian release of this host from /etc/os-release')


def ensure_debootstrap() -> str:
    found = shutil.which('debootstrap')
    if found:
        return found
    lock = open('/tmp/savepoint-apt.lock', 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        subprocess.run(['apt-get', 'install', '-y', '-q', 'debootstrap'], check=True, capture_output=True,
                       env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
    finally:
        lock.close()
    found = shutil.which('debootstrap')
    if not found:
        raise ChrootError('debootstrap is not installed and apt-get could not install it')
    return found


def runtime_root(packages: Sequence[str]) -> Path:
    wanted = sorted(set(BASE_PACKAGES) | set(packages))
    suite = host_suite()
    key = hashlib.sha256(('%s %s' % (suite, ' '.join(wanted))).encode()).hexdigest()[:12]
    root = CACHE / ('%s-%s' % (suite, key))
    done = root.parent / (root.name + '.complete')
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time; others wait and reuse it
        if done.exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        proc = subprocess.run([ensure_debootstrap(), '--variant=minbase', '--include=' + ','.join(wanted),
                               suite, str(root), MIRROR], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ChrootError('debootstrap of %s with %s failed (rc %d):\n%s' % (
                suite, ', '.join(wanted), proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
        (root / 'etc' / 'savepoint-packages').write_text('\n'.join(wanted) + '\n')
        done.write_text('\n'.join(wanted) + '\n')
    return root


def fresh_copy(base: Path, dest: Path) -> Path:
    # cp -a keeps device nodes, owners and hard links, which shutil.copytree does not
    subprocess.run(['cp', '-a', str(base), str(dest)], check=True)
    return dest


def run_in(root: Path, cmd: List[str], env: dict = None) -> subprocess.CompletedProcess:
    clean = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/root',
             'LANG': 'C.UTF-8'}
    clean.update(env or {})
    return subprocess.run(['chroot', str(root)] + cmd, capture_output=True, text=True, check=False, env=clean)


def installed_packages(root: Path) -> List[str]:
    proc = run_in(root, ['dpkg-query', '-W', '-f', '${Package}\n'])
    if proc.returncode != 0:
        raise ChrootError('dpkg-query in %s failed: %s' % (root, proc.stderr))
    return proc.stdout.split()

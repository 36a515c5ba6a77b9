"""A tiny real Linux guest on the local libvirtd (QEMU/TCG) for tests and `make demo`.

The guest (built by linux_guest/build.sh from Debian packages only) runs busybox init, dropbear SSH,
busybox httpd serving /health, and the QEMU guest agent; its ext4 data disk is mounted at /data.
SSH and HTTP are forwarded to free 127.0.0.1 ports chosen at start. Each guest has its own run
directory (fresh copy of the data disk, console log, known_hosts) and a unique domain name;
destroy() removes the domain, its snapshot metadata and the run directory.

    from services.linux_guest import build_guest, LinuxGuest, start_guests
    g = LinuxGuest(prefix='sp-t'); g.start(); g.ssh('echo hi > /data/x'); g.health(); g.destroy()

Everything raises on failure: a test that needs the guest fails when it cannot have it.
CLI: python tests/services/linux_guest.py build | start [N] | stop-all
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid as uuidlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent / 'linux_guest'
REPO = HERE.parents[2]
#: where the build lives; CI and `make demo` use the same default (override with LINUX_GUEST_CACHE)
BUILD_DIR = Path(os.environ.get('LINUX_GUEST_CACHE') or REPO / '.cache' / 'linux-guest')
URI = 'qemu:///system'
METADATA_NS = 'https://savepoint.virt/test/linux-guest'
#: boot deadline: TCG on a loaded 2-core machine can take 20 s and more for a first boot
BOOT_TIMEOUT = float(os.environ.get('LINUX_GUEST_BOOT_TIMEOUT', '180'))

_build_lock = threading.Lock()
_daemon_lock = threading.Lock()
_daemon_ready = {'done': False}


def _python_wanted(with_python: Optional[bool]) -> bool:
    if with_python is None:
        return os.environ.get('WITH_PYTHON', '0') == '1'
    return with_python


def build_guest(with_python: Optional[bool] = None, build_dir: Optional[Path] = None) -> Path:
    """Build (or find cached) kernel, initramfs, template disk and keys; return the directory of
    this version's artifacts (vmlinuz, initrd*.cpio.gz, data.qcow2) inside the cache.

    Idempotent and fast when cached (a stamp per version and variant). Installs missing host tools
    via apt. with_python=None follows the WITH_PYTHON environment variable.
    """
    out = Path(build_dir or BUILD_DIR)
    env = dict(os.environ, WITH_PYTHON='1' if _python_wanted(with_python) else '0')
    with _build_lock:
        proc = subprocess.run(['bash', str(HERE / 'build.sh'), str(out)], env=env, capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError('building the Linux test guest failed (rc %d):\n%s%s'
                           % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    lines = proc.stdout.split()
    if not lines or not Path(lines[-1]).is_dir():
        raise RuntimeError('build.sh printed no artifact directory: %r\n%s' % (proc.stdout, proc.stderr[-2000:]))
    return Path(lines[-1])


def _ensure_daemon() -> None:
    with _daemon_lock:
        if not _daemon_ready['done']:
            from services.libvirt import ensure_daemon
            ensure_daemon(sys.executable)
            _daemon_ready['done'] = True


def _connect():
    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt.open(URI)


def free_port() -> int:
    """A loopback port free right now (the kernel picks it, so concurrent runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class LinuxGuest:
    """One guest: a libvirt domain on qemu:///system with its own data disk and loopback ports."""

    def __init__(self, prefix: str = 'sp-t', with_python: bool = False, memory_mib: int = 256,
                 agent: bool = True, build_dir: Optional[Path] = None) -> None:
        self.with_python = with_python
        self.memory_mib = memory_mib
        self.agent = agent
        self.build_dir = Path(build_dir or BUILD_DIR)   # the cache: keys, run dirs, versions
        self.artifacts = self.build_dir                    # set by start(): this version's kernel & co.
        self.name = '%s-%s' % (prefix, uuidlib.uuid4().hex[:8])
        self.uuid = str(uuidlib.uuid4())
        self.run_dir = self.build_dir / 'run' / self.name
        self.ssh_port = 0
        self.http_port = 0
        self.key_file = self.build_dir / 'id_ed25519'
        self.known_hosts = self.run_dir / 'known_hosts'
        self.console_log = self.run_dir / 'console.log'
        self.disk = self.run_dir / 'data.qcow2'
        self.dom = None
        self._conn = None

    # -- life cycle ------------------------------------------------------------------------
    @property
    def health_url(self) -> str:
        return 'http://127.0.0.1:%d/health' % self.http_port

    def domain_xml(self) -> str:
        """The libvirt domain XML of this guest (ports and build must be set)."""
        text = (HERE / 'domain.xml.in').read_text()
        if not self.agent:
            start = text.index("    <channel type='unix'>")
            end = text.index('</channel>', start) + len('</channel>\n')
            text = text[:start] + text[end:]
        fields = {'NAME': self.name, 'UUID': self.uuid, 'MEM': str(self.memory_mib), 'BUILD': str(self.artifacts),
                  'RUN': str(self.run_dir), 'SSH_PORT': str(self.ssh_port), 'HTTP_PORT': str(self.http_port),
                  'INITRD': 'initrd-python.cpio.gz' if self.with_python else 'initrd.cpio.gz'}
        for key, value in fields.items():
            text = text.replace('@%s@' % key, value)
        return text

    def start(self, timeout: float = BOOT_TIMEOUT) -> 'LinuxGuest':
        """Build if needed, define and start the domain, wait until SSH answers; raise otherwise."""
        import libvirt
        self.artifacts = build_guest(self.with_python, self.build_dir)
        _ensure_daemon()
        self._conn = _connect()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.artifacts / 'data.qcow2', self.disk)
        host_key = (self.build_dir / 'hostkey.pub').read_text().strip()
        last_error = None
        for _attempt in range(5):
            self.ssh_port, self.http_port = free_port(), free_port()
            if self.ssh_port == self.http_port:
                continue
            self.known_hosts.write_text('[127.0.0.1]:%d %s\n' % (self.ssh_port, host_key))
            try:
                self.dom = self._conn.defineXML(self.domain_xml())
                self.dom.create()
                break
            except libvirt.libvirtError as exc:
                # a port taken between free_port() and QEMU's bind: try other ports
                last_error = exc
                self._undefine()
                if 'host forwarding' not in str(exc):
                    self.destroy()
                    raise RuntimeError('guest %s did not start: %s' % (self.name, exc)) from exc
        else:
            self.destroy()
            raise RuntimeError('guest %s did not start: %s' % (self.name, last_error))
        try:
            self.wait_ssh(timeout)
        except Exception:
            self.destroy()
            raise
        return self

    def _undefine(self) -> None:
        import libvirt
        if self.dom is None:
            return
        try:
            if self.dom.isActive():
                self.dom.destroy()
        except libvirt.libvirtError:
            pass
        try:
            self.dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        except libvirt.libvirtError:
            pass
        self.dom = None

    def destroy(self) -> None:
        """Stop and undefine the domain (snapshot metadata too) and remove its disk and files."""
        if self.dom is None and self._conn is not None:
            try:
                self.dom = self._conn.lookupByName(self.name)
            except Exception:  # never defined
                self.dom = None
        self._undefine()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def __enter__(self) -> 'LinuxGuest':
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    # -- reaching it ---------------------------------------------------------------------------
    def ssh_args(self) -> List[str]:
        return ['-o', 'UserKnownHostsFile=%s' % self.known_hosts, '-o', 'StrictHostKeyChecking=yes',
                '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR',
                '-o', 'GlobalKnownHostsFile=/dev/null']

    def ssh(self, cmd: str, check: bool = True, timeout: float = 120,
            connect_timeout: int = 20) -> subprocess.CompletedProcess:
        """Run cmd in the guest's shell as root; check=True raises with its output when it fails."""
        # -F /dev/null: a user's ~/.ssh/config (proxies, other keys) must not change where this goes
        args = ['ssh', '-F', '/dev/null', '-i', str(self.key_file), '-p', str(self.ssh_port),
                '-o', 'ConnectTimeout=%d' % connect_timeout]
        args += self.ssh_args() + ['root@127.0.0.1', cmd]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError('ssh %s %r failed (rc %d): %s%s'
                               % (self.name, cmd, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def _banner(self) -> bool:
        try:
            with socket.create_connection(('127.0.0.1', self.ssh_port), timeout=3) as sock:
                return sock.recv(7) == b'SSH-2.0'
        except OSError:
            return False

    def wait_ssh(self, timeout: float = BOOT_TIMEOUT) -> float:
        """Wait until a real SSH command works; return the seconds waited. Raise with the console."""
        started = time.monotonic()
        deadline = started + timeout
        last = ''
        while time.monotonic() < deadline:
            if self.dom is not None and not self.dom.isActive():
                raise RuntimeError('guest %s stopped while booting; console:\n%s' % (self.name, self.console_tail()))
            if self._banner():
                remaining = max(1, int(deadline - time.monotonic()))
                try:
                    proc = self.ssh('true', check=False, timeout=remaining + 5, connect_timeout=min(20, remaining))
                except subprocess.TimeoutExpired:
                    continue
                if proc.returncode == 0:
                    return time.monotonic() - started
                last = proc.stderr
            time.sleep(0.2)
        raise RuntimeError('guest %s: no SSH on 127.0.0.1:%d within %.0f s (%s); console:\n%s'
                           % (self.name, self.ssh_port, timeout, last.strip(), self.console_tail()))

    def console_tail(self, lines: int = 30) -> str:
        try:
            return '\n'.join(self.console_log.read_text(errors='replace').splitlines()[-lines:])
        except OSError:
            return '(no console log)'

    def health(self, timeout: float = 10) -> Tuple[Optional[int], str]:
        """GET /health: (status, body); (None, reason) when nothing answers."""
        # no proxy from the environment: the page is on loopback and nothing else may be contacted
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.health_url, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors='replace')
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors='replace')
        except (OSError, urllib.error.URLError) as exc:
            return None, str(exc)

    def inventory_vars(self) -> Dict[str, object]:
        """Host variables that let Ansible reach the guest over SSH."""
        found = {
            'ansible_host': '127.0.0.1',
            'ansible_port': self.ssh_port,
            'ansible_user': 'root',
            'ansible_connection': 'ssh',
            'ansible_ssh_private_key_file': str(self.key_file),
            'ansible_ssh_common_args': ' '.join(self.ssh_args()),
            'guest_name': self.name,
            'guest_uuid': self.uuid,
            'guest_health_url': self.health_url,
        }
        if self.with_python:
            found['ansible_python_interpreter'] = '/usr/bin/python3'
        return found


class GuestList(list):
    """The guests of start_guests(): a context manager that destroys them all."""

    def destroy(self) -> None:
        for guest in self:
            guest.destroy()

    def __enter__(self) -> 'GuestList':
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


def start_guests(n: int, timeout: float = BOOT_TIMEOUT, **kw) -> GuestList:
    """Boot n guests in parallel; if one fails, destroy them all and raise its error."""
    build_guest(kw.get('with_python', False), kw.get('build_dir'))
    _ensure_daemon()
    guests = GuestList(LinuxGuest(**kw) for _index in range(n))
    errors: List[BaseException] = []

    def boot(guest: LinuxGuest) -> None:
        try:
            guest.start(timeout)
        except BaseException as exc:  # reported below, after every thread ended
            errors.append(exc)
    threads = [threading.Thread(target=boot, args=(g,)) for g in guests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        guests.destroy()
        raise RuntimeError('%d of %d guests did not start: %s' % (len(errors), n, errors[0])) from errors[0]
    return guests


def stop_all(build_dir: Optional[Path] = None) -> List[str]:
    """Destroy every domain this helper defined (found by its metadata), and their run dirs."""
    import libvirt
    conn = _connect()
    stopped = []
    try:
        for dom in conn.listAllDomains(0):
            try:
                dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
            except libvirt.libvirtError:
                continue
            guest = LinuxGuest(build_dir=build_dir)
            guest.name, guest.dom = dom.name(), dom
            guest.run_dir = guest.build_dir / 'run' / dom.name()
            guest.destroy()
            stopped.append(dom.name())
    finally:
        conn.close()
    return stopped


def main(argv: List[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    cmd = argv[1] if len(argv) > 1 else 'build'
    if cmd == 'build':
        print(build_guest())
        return 0
    if cmd == 'start':
        count = int(argv[2]) if len(argv) > 2 else 1
        for guest in start_guests(count, prefix='sp-cli', with_python=_python_wanted(None)):
            print('%s ssh -i %s -p %d %s root@127.0.0.1   # health %s'
                  % (guest.name, guest.key_file, guest.ssh_port, ' '.join(guest.ssh_args()), guest.health_url))
        return 0
    if cmd == 'stop-all':
        for name in stop_all():
            print('destroyed', name)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))

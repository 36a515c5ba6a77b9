"""vcsim (govmomi's vSphere API simulator) for the VMware tests.

Usage from pytest (nothing here imports pytest)::

    from tests.services.vcsim import VcsimServer   # or put tests/services on sys.path

    @pytest.fixture(scope="session")
    def vcsim():
        with VcsimServer(vms_per_pool=5) as server:
            yield server   # .host .port .url .pid, .connect_kwargs(), .connect()

Any failure to build or start raises VcsimError: the tests fail, they are
never skipped. The binary comes from tests/services/vcsim/build.sh (a no-op
taking well under a second when it is up to date); VCSIM_BIN=/path/to/vcsim
skips the build.

Inventory: ``-vm N`` is per resource pool and there are two pools, so
``vms_per_pool=N`` gives 2N powered-on VMs, DC0_H0_VM0..VM(N-1) and
DC0_C0_RP0_VM0..VM(N-1), inventory path ``DC0/vm/<name>``. Any user/password
is accepted; the TLS certificate is a built-in 1024-bit test certificate that
OpenSSL 3 rejects even when trusted, so connect without verification.

Manual use::

    python tests/services/vcsim.py --vms 5     # start in the background, print host/port
    python tests/services/vcsim.py --status
    python tests/services/vcsim.py --stop      # or --kill (SIGKILL)

The state directory (default <repo>/.cache/vcsim/run) has the same layout as
the one of tests/services/vcsim/ctl.sh, so either tool can stop the other's
server.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

HERE = Path(__file__).resolve().parent
VCSIM_DIR = HERE / "vcsim"
BUILD_SH = VCSIM_DIR / "build.sh"
REPO_ROOT = HERE.parent.parent
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "vcsim"
DEFAULT_STATE_DIR = DEFAULT_CACHE_DIR / "run"
HOST = "127.0.0.1"

_GOVC_URL_RE = re.compile(r"GOVC_URL=(\S+)")
_built: dict = {}
_live: set = set()


class VcsimError(RuntimeError):
    """vcsim could not be built, started or stopped."""


def build(cache_dir: Optional[os.PathLike] = None) -> str:
    """Return the path of an up-to-date vcsim binary, building it if needed.

    $VCSIM_BIN, if set, is used as is. The result is memoised per process.
    """
    env_bin = os.environ.get("VCSIM_BIN")
    if env_bin:
        if not os.access(env_bin, os.X_OK):
            raise VcsimError("VCSIM_BIN=%s is not an executable file" % env_bin)
        return env_bin
    cache = str(Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR)
    if cache in _built and os.access(_built[cache], os.X_OK):
        return _built[cache]
    try:
        res = subprocess.run([str(BUILD_SH), cache], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, check=False)
    except OSError as exc:
        raise VcsimError("cannot run %s: %s" % (BUILD_SH, exc)) from exc
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines or not os.access(lines[-1], os.X_OK):
        raise VcsimError("%s failed (exit %s):\n%s" % (
            BUILD_SH, res.returncode, _tail(res.stderr + res.stdout)))
    _built[cache] = lines[-1]
    return lines[-1]


def _tail(text: str, n: int = 20) -> str:
    """First 3 and last n lines (vcsim prints the reason of a flag error
    first, then its usage)."""
    lines = text.rstrip().splitlines()
    if len(lines) > n + 3:
        lines = lines[:3] + ["..."] + lines[-n:]
    return "\n".join("    " + line for line in lines)


def _alive(pid: int) -> bool:
    """True if pid runs (a zombie, exited but not reaped, counts as dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_vcsim(pid: int) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return _alive(pid) and b"vcsim" in f.read()
    except OSError:
        return False


class VcsimServer:
    """One vcsim process on 127.0.0.1 with a free port."""

    def __init__(self, vms_per_pool: int = 2, *, binary: Optional[str] = None,
                 cache_dir: Optional[os.PathLike] = None,
                 state_dir: Optional[os.PathLike] = None,
                 extra_args: Sequence[str] = (), start_timeout: float = 180.0,
                 stop_timeout: float = 30.0) -> None:
        self.vms_per_pool = vms_per_pool
        self.binary = binary
        self.cache_dir = cache_dir
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._own_state_dir = state_dir is None
        self.state_dir: Optional[Path] = None if state_dir is None else Path(state_dir)
        self._proc: Optional[subprocess.Popen] = None
        self.host = HOST
        self.port: Optional[int] = None
        self.pid: Optional[int] = None
        self.url: Optional[str] = None        # https://127.0.0.1:PORT/sdk
        self.govc_url: Optional[str] = None   # https://user:pass@127.0.0.1:PORT/sdk
        self.startup_seconds: Optional[float] = None

    # -- public API --------------------------------------------------------
    @property
    def log_path(self) -> Optional[Path]:
        return None if self.state_dir is None else self.state_dir / "vcsim.log"

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _is_vcsim(self.pid)

    @property
    def vm_count(self) -> int:
        return 2 * self.vms_per_pool

    def vm_names(self) -> list:
        n = self.vms_per_pool
        return (["DC0_H0_VM%d" % i for i in range(n)]
                + ["DC0_C0_RP0_VM%d" % i for i in range(n)])

    def connect_kwargs(self) -> dict:
        """Keyword arguments for pyVim.connect.SmartConnect."""
        self._require_started()
        return {"host": self.host, "port": self.port, "user": "user",
                "pwd": "pass", "disableSslCertValidation": True}

    def connect(self):
        """A pyVmomi ServiceInstance (caller disconnects with pyVim.connect.Disconnect)."""
        from pyVim.connect import SmartConnect  # only needed here
        return SmartConnect(**self.connect_kwargs())

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def start(self, vms_per_pool: Optional[int] = None, *, detach: bool = False) -> "VcsimServer":
        """Start vcsim and wait until it answers GET /about; raise VcsimError.

        detach=True: do not stop it at interpreter exit (for manual use).
        """
        if vms_per_pool is not None:
            self.vms_per_pool = vms_per_pool
        if self.running:
            raise VcsimError("already running (pid %s, %s)" % (self.pid, self.url))
        if not isinstance(self.vms_per_pool, int) or self.vms_per_pool < 0:
            raise VcsimError("vms_per_pool must be an int >= 0, got %r" % (self.vms_per_pool,))
        binary = self.binary or build(self.cache_dir)

        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="vcsim-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        other = _read_pid(self.state_dir)
        if other and _is_vcsim(other):
            raise VcsimError("a vcsim (pid %d) already uses state dir %s" % (other, self.state_dir))
        self._clean_state()
        tmp = _make_tmpdir(self.state_dir)   # vcsim's datastore goes here (TMPDIR)
        (self.state_dir / "tmpdir").write_text(tmp + "\n")

        cmd = [binary, "-l", "%s:0" % HOST, "-vm", str(self.vms_per_pool)] + self.extra_args
        env = dict(os.environ, TMPDIR=tmp)
        t0 = time.monotonic()
        with open(self.log_path, "wb") as log:
            try:
                self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True)
            except OSError as exc:
                raise VcsimError("cannot run %s: %s" % (binary, exc)) from exc
        self.pid = self._proc.pid
        (self.state_dir / "pid").write_text("%d\n" % self.pid)
        if not detach:
            _live.add(self)
        try:
            self._wait_ready(cmd, t0)
        except BaseException:
            self._terminate(signal.SIGKILL)
            self._cleanup()   # the log is in the exception message
            raise
        self._write_state()
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """SIGTERM (vcsim then removes its datastore dir), SIGKILL after timeout."""
        self._terminate(signal.SIGTERM, self.stop_timeout if timeout is None else timeout)
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL at once, e.g. to simulate a vCenter crash mid-run.

        The log and the leftover datastore files stay until stop() or a new
        start(); start() can be called again (new port).
        """
        self._terminate(signal.SIGKILL)

    def __enter__(self) -> "VcsimServer":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "VcsimServer(url=%r, pid=%r, vms_per_pool=%r)" % (self.url, self.pid, self.vms_per_pool)

    @classmethod
    def attach(cls, state_dir: os.PathLike = DEFAULT_STATE_DIR) -> "VcsimServer":
        """A handle on a server started elsewhere (ctl.sh or --vms), from its state dir."""
        server = cls(state_dir=state_dir)
        server._own_state_dir = False
        server.pid = _read_pid(server.state_dir)
        env = {}
        try:
            for line in (server.state_dir / "env").read_text().splitlines():
                key, _sep, value = line.partition("=")
                env[key] = value
        except OSError:
            pass
        if env.get("VCSIM_PORT"):
            server.port = int(env["VCSIM_PORT"])
            server.url = env.get("VCSIM_URL")
            server.govc_url = env.get("GOVC_URL")
        return server

    # -- internals ---------------------------------------------------------
    def _require_started(self) -> None:
        if self.port is None:
            raise VcsimError("vcsim is not started")

    def _fail(self, msg: str) -> "VcsimError":
        return VcsimError("%s\nvcsim output:\n%s" % (msg, _tail(self.log_text())))

    def _wait_ready(self, cmd: list, t0: float) -> None:
        # The "export GOVC_URL=... GOVC_SIM_PID=..." line is printed once the
        # inventory is built and the listener is up.
        deadline = t0 + self.start_timeout
        match = None
        while match is None:
            match = _GOVC_URL_RE.search(self.log_text())
            if match:
                break
            if self._proc.poll() is not None:
                raise self._fail("vcsim exited with status %s during startup: %s"
                                 % (self._proc.returncode, " ".join(cmd)))
            if time.monotonic() > deadline:
                raise self._fail("vcsim not ready after %.0f s: %s" % (self.start_timeout, " ".join(cmd)))
            time.sleep(0.05)
        self.govc_url = match.group(1)
        port = re.search(r"@[^/]*:(\d+)/", self.govc_url)
        if not port:
            raise self._fail("cannot parse the port from GOVC_URL=%s" % self.govc_url)
        self.port = int(port.group(1))
        self.url = "https://%s:%d/sdk" % (self.host, self.port)

        ctx = ssl._create_unverified_context()  # vcsim's test certificate
        last_exc = None
        for _attempt in range(50):
            try:
                with urllib.request.urlopen("https://%s:%d/about" % (self.host, self.port),
                                            context=ctx, timeout=5) as resp:
                    json.load(resp)
                    break
            except (OSError, ValueError) as exc:
                last_exc = exc
                if self._proc.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            raise self._fail("GET https://%s:%d/about failed: %s" % (self.host, self.port, last_exc))
        if self._proc.poll() is not None:
            raise self._fail("vcsim exited right after startup (GET /about: %s)" % last_exc)
        self.startup_seconds = time.monotonic() - t0

    def _write_state(self) -> None:
        sd = self.state_dir
        (sd / "port").write_text("%d\n" % self.port)
        (sd / "url").write_text(self.url + "\n")
        env = ("VCSIM_HOST=%s\nVCSIM_PORT=%d\nVCSIM_URL=%s\nVCSIM_PID=%d\nVCSIM_LOG=%s\n"
               "GOVC_URL=%s\nGOVC_INSECURE=1\n") % (
                   self.host, self.port, self.url, self.pid, self.log_path, self.govc_url)
        (sd / "env.new").write_text(env)
        os.replace(sd / "env.new", sd / "env")

    def _terminate(self, sig: int, timeout: float = 10.0) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(sig)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    try:
                        self._proc.wait(10)
                    except subprocess.TimeoutExpired as exc:
                        raise VcsimError("vcsim pid %d survives SIGKILL" % self.pid) from exc
        elif self.pid is not None and _is_vcsim(self.pid):
            os.kill(self.pid, sig)
            if not _wait_gone(self.pid, timeout):
                os.kill(self.pid, signal.SIGKILL)
                if not _wait_gone(self.pid, 10):
                    raise VcsimError("vcsim pid %d survives SIGKILL" % self.pid)
        _live.discard(self)

    def _clean_state(self) -> None:
        if self.state_dir is None:
            return
        try:
            tmp = (self.state_dir / "tmpdir").read_text().strip()
        except OSError:
            tmp = ""
        if "/vcsim-ds." in tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        for name in ("pid", "env", "env.new", "url", "port", "tmpdir"):
            try:
                (self.state_dir / name).unlink()
            except FileNotFoundError:
                pass

    def _cleanup(self) -> None:
        self._clean_state()
        if self._own_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None
        self._proc = None
        self.port = self.url = self.govc_url = None


def _make_tmpdir(state_dir: Path) -> str:
    """vcsim's TMPDIR: $VCSIM_TMPDIR, else tmpfs (/dev/shm), else the state dir.

    vcsim writes a few files per VM there; on a busy disk creating 10,000 VMs
    took 40-54 s instead of 8 s on tmpfs.
    """
    base = os.environ.get("VCSIM_TMPDIR")
    if not base:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(state_dir)
    return tempfile.mkdtemp(prefix="vcsim-ds.", dir=base)


def _read_pid(state_dir: Path) -> Optional[int]:
    try:
        return int((state_dir / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        try:
            server.stop(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start/stop a background vcsim on 127.0.0.1 (free port).",
        epilog="Arguments after -- are passed to vcsim.")
    parser.add_argument("--vms", type=int, default=2,
                        help="VMs per resource pool (2 pools: --vms N gives 2N VMs; default 2)")
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                        help="state dir (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=180.0, help="start timeout in seconds")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--stop", action="store_true", help="stop it (SIGTERM, then SIGKILL)")
    group.add_argument("--kill", action="store_true", help="SIGKILL it")
    group.add_argument("--status", action="store_true", help="print its state, exit 1 if not running")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = parser.parse_args(argv)

    try:
        if args.stop or args.kill or args.status:
            server = VcsimServer.attach(args.state_dir)
            if not server.running:
                print("vcsim: not running (state dir %s)" % args.state_dir, file=sys.stderr)
                if not args.status:
                    server._clean_state()
                return 1 if args.status else 0
            if args.status:
                sys.stdout.write((Path(args.state_dir) / "env").read_text())
            elif args.kill:
                server.kill()
                server._clean_state()
                print("vcsim: killed pid %d" % server.pid, file=sys.stderr)
            else:
                server.stop()
                print("vcsim: stopped pid %d" % server.pid, file=sys.stderr)
            return 0
        server = VcsimServer(args.vms, state_dir=args.state_dir, extra_args=extra,
                             start_timeout=args.timeout)
        server.start(detach=True)
    except VcsimError as exc:
        print("vcsim: ERROR: %s" % exc, file=sys.stderr)
        return 1
    print("vcsim: ready in %.2f s (%d VMs), stop with: %s %s --stop --state-dir %s"
          % (server.startup_seconds, server.vm_count, sys.executable, __file__, args.state_dir),
          file=sys.stderr)
    sys.stdout.write((server.state_dir / "env").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The local OpenStack test stack (scripts in tests/services/openstack/) for pytest.

    stack = OpenStackStack()          # state dir: $OS_STACK_DIR or <repo>/.cache/openstack
    stack.start()                     # runs start.sh; raises StackError on failure
    conn = stack.connect()            # openstacksdk Connection, cloud 'stack-demo'
    with stack.server(conn, boot_from_volume=True) as srv:
        ...                           # deleted afterwards, with its snapshots
    stack.stop_service("nova-compute")    # e.g. a service stopped mid-wait
    stack.start_service("nova-compute")   # back, with a fresh heartbeat
    stack.stop()

Everything but connect()/server helpers uses only the standard library.  The
clouds file is `stack.clouds_yaml` (clouds 'stack-admin' and 'stack-demo');
`stack.environ()` gives OS_CLIENT_CONFIG_FILE for subprocesses (ansible).

Import it as `tests.services.openstack` (repo root on sys.path), or by path
with importlib; never with tests/services itself on sys.path: this file would
then shadow openstacksdk's `openstack` package (connect() raises a clear
error if that happens).

Manual use:  python tests/services/openstack.py start|stop [--purge]|status|env
             python tests/services/openstack.py stop-service|start-service NAME
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "openstack"
REPO_ROOT = HERE.parent.parent
DEFAULT_STATE_DIR = REPO_ROOT / ".cache" / "openstack"

# Process names (run/NAME.pid) in start order; the APIs with their ports.
SERVICES = (
    "mariadb", "epmd", "rabbitmq", "keystone", "placement", "glance", "neutron",
    "cinder-api", "nova-api", "nova-conductor", "nova-scheduler",
    "cinder-scheduler", "cinder-volume", "nova-compute",
)
PORTS = {
    "mariadb": 3306, "rabbitmq": 5672, "keystone": 5000, "placement": 8778,
    "glance": 9292, "neutron": 9696, "cinder-api": 8776, "nova-api": 8774,
}
# Shared read-only fixtures created by start.sh (py/bootstrap.py).
IMAGE = "tiny-test-image"
OTHER_IMAGE = "tiny-test-image-2"
FLAVOR = "tiny"


class StackError(RuntimeError):
    """The stack could not be started/stopped: tests must fail, not skip."""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state, ppid, pgrp, ...), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process is in process group pgid."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st and st[2] == str(pgid) and st[0] != "Z":
                return True
    return False


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class OpenStackStack:
    def __init__(self, state_dir: str | os.PathLike | None = None,
                 env: dict | None = None):
        self.env = dict(os.environ if env is None else env)
        state = state_dir or self.env.get("OS_STACK_DIR") or DEFAULT_STATE_DIR
        self.state_dir = Path(state).resolve()
        self.env["OS_STACK_DIR"] = str(self.state_dir)
        self.start_script = SCRIPTS / "start.sh"
        self.stop_script = SCRIPTS / "stop.sh"

    # ------------------------------------------------------------ paths
    @property
    def clouds_yaml(self) -> Path:
        return self.state_dir / "clouds.yaml"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def venv(self) -> Path:
        return Path(self.env.get("OS_STACK_VENV") or self.state_dir / "venv")

    def environ(self) -> dict:
        """Variables a client process needs (merge into os.environ)."""
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}

    # ------------------------------------------------------------ whole stack
    def _run(self, script: Path, args: list, timeout: float, echo: bool) -> str:
        out, label, argv = [], script.name, ["bash", str(script), *args]
        proc = subprocess.Popen(
            argv, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)

        def pump():
            for line in proc.stdout:
                out.append(line)
                if echo:
                    sys.stderr.write(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the script; services have own sessions
            proc.wait()
            reader.join(5)
            raise StackError("%s timed out after %ss:\n%s"
                             % (label, timeout, _tail("".join(out))))
        reader.join()
        if rc != 0:
            raise StackError("%s exited %s:\n%s"
                             % (label, rc, _tail("".join(out))))
        return "".join(out)

    def start(self, timeout: float = 1200, echo: bool = False) -> "OpenStackStack":
        """Run start.sh (fresh install ~2 min, stopped stack ~30 s, running
        stack a few s).  Raises StackError with the output tail on failure."""
        self._run(self.start_script, [], timeout, echo)
        return self

    def stop(self, purge: bool = False, timeout: float = 300,
             echo: bool = False) -> None:
        self._run(self.stop_script, ["--purge"] if purge else [], timeout, echo)

    def ensure_running(self) -> "OpenStackStack":
        """start() unless every process is alive (cheap check, no HTTP)."""
        if not self.is_running():
            self.start()
        return self

    # ------------------------------------------------------------ processes
    def pid(self, name: str) -> int | None:
        """The service's pid (= its process group) if it is running."""
        try:
            pid_s, start = (self.run_dir / f"{name}.pid").read_text().split()[:2]
            pid = int(pid_s)
        except (OSError, ValueError):
            return None
        st = _proc_stat(pid)
        if st is None or st[0] == "Z" or st[19] != start:
            return None
        return pid

    def status(self) -> dict:
        return {name: self.pid(name) for name in SERVICES}

    def is_running(self) -> bool:
        return all(self.status().values())

    def stop_service(self, name: str, sig: int = signal.SIGTERM,
                     timeout: float = 30) -> None:
        """Stop one service (its whole process group) and wait for it.
        sig=signal.SIGKILL simulates a crash.  nova-compute on SIGTERM takes
        ~5-8 s.  Note: nova/cinder keep reporting a stopped worker as 'up'
        for service_down_time (60 s) after its last heartbeat."""
        if name not in SERVICES:
            raise ValueError("unknown service %r (one of %s)" % (name, SERVICES))
        pid = self.pid(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + timeout
            while _group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _group_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while _group_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if _group_alive(pid):
                    raise StackError("%s (pgid %d) survived SIGKILL" % (name, pid))
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / f"{name}.pid").unlink()

    def start_service(self, name: str | None = None,
                      timeout: float = 600) -> None:
        """Start what is not running (via start.sh, which also waits until
        nova-compute/cinder-volume have sent a heartbeat since they started:
        ~15 s after a nova-compute restart).  `name` only documents intent."""
        if name is not None and name not in SERVICES:
            raise ValueError("unknown service %r" % name)
        self.start(timeout=timeout)

    def log_tail(self, name: str, lines: int = 40) -> str:
        try:
            return _tail((self.log_dir / f"{name}.log").read_text(errors="replace"), lines)
        except OSError:
            return ""

    # ------------------------------------------------------------ openstacksdk
    def connect(self, cloud: str = "stack-demo", **config):
        """openstacksdk Connection for a cloud of clouds_yaml; `config`
        overrides settings, e.g. compute_api_version="2.93"."""
        import openstack

        if Path(openstack.__file__ or "").resolve() == Path(__file__).resolve():
            raise ImportError(
                "'openstack' is this helper, not openstacksdk: do not put %s "
                "on sys.path; import tests.services.openstack instead" % HERE)
        from openstack import config as os_config
        from openstack import connection

        loader = os_config.OpenStackConfig(config_files=[str(self.clouds_yaml)])
        return connection.Connection(config=loader.get_one(cloud=cloud, **config))

    @staticmethod
    def root_volume_id(server) -> str | None:
        vols = server.attached_volumes or []
        return vols[0]["id"] if vols else None

    def boot_server(self, conn, *, name: str | None = None,
                    boot_from_volume: bool = False, image: str = IMAGE,
                    flavor: str = FLAVOR, volume_size: int = 1,
                    wait: bool = True, timeout: float = 180, **kwargs):
        """Boot a server (no network: neutron has no agents).  With
        boot_from_volume the root disk is a new cinder volume made from
        `image`, deleted with the server."""
        name = name or "pytest-%s" % uuid.uuid4().hex[:10]
        img = conn.image.find_image(image, ignore_missing=False)
        flv = conn.compute.find_flavor(flavor, ignore_missing=False)
        args = dict(name=name, flavor_id=flv.id, networks="none", **kwargs)
        if boot_from_volume:
            args["block_device_mapping"] = [{
                "boot_index": 0, "uuid": img.id, "source_type": "image",
                "destination_type": "volume", "volume_size": volume_size,
                "delete_on_termination": True}]
        else:
            args["image_id"] = img.id
        server = conn.compute.create_server(**args)
        if wait:
            server = conn.compute.wait_for_server(
                server, status="ACTIVE", failures=["ERROR"], interval=0.5,
                wait=timeout)
        return server

    @staticmethod
    def image_snapshot_ids(image) -> list:
        """Volume snapshot ids in an image's block_device_mapping property
        (createImage of a boot-from-volume server)."""
        bdm = image.properties.get("block_device_mapping") or []
        if isinstance(bdm, str):
            bdm = json.loads(bdm)
        return [m["snapshot_id"] for m in bdm if m.get("snapshot_id")]

    def server_images(self, conn, server) -> list:
        """createImage images of a server.  Image-backed: the image's
        instance_uuid.  Boot from volume: such images have NO instance_uuid
        (nor image_type); they reference cinder snapshots of the server's
        volumes in block_device_mapping."""
        sid = getattr(server, "id", server)
        srv = conn.compute.get_server(sid)
        snaps = {sn.id for v in srv.attached_volumes or []
                 for sn in conn.block_storage.snapshots(volume_id=v["id"])}
        return [i for i in conn.image.images(owner=conn.current_project_id)
                if i.instance_uuid == sid
                or snaps.intersection(self.image_snapshot_ids(i))]

    def delete_server(self, conn, server, *, with_snapshots: bool = True,
                      timeout: float = 180) -> None:
        """Delete a server and wait until it (and, for boot from volume, its
        root volume) is gone.  with_snapshots also deletes its createImage
        images and the volume snapshots of its volumes first: cinder refuses
        to delete a volume with snapshots, and nova then silently leaks the
        root volume."""
        sid = getattr(server, "id", server)
        srv = conn.compute.find_server(sid, ignore_missing=True)
        if srv is None:
            return
        srv = conn.compute.get_server(sid)
        own_volumes = [v["id"] for v in srv.attached_volumes or []
                       if v.get("delete_on_termination")]
        if with_snapshots:
            snapshot_ids = set()
            for img in self.server_images(conn, srv):
                snapshot_ids.update(self.image_snapshot_ids(img))
                conn.image.delete_image(img, ignore_missing=True)
            for vid in own_volumes:
                snapshot_ids.update(
                    s.id for s in conn.block_storage.snapshots(volume_id=vid))
            for snap_id in snapshot_ids:
                conn.block_storage.delete_snapshot(snap_id, ignore_missing=True)
            for snap_id in snapshot_ids:
                snap = conn.block_storage.find_snapshot(snap_id, ignore_missing=True)
                if snap is not None:
                    conn.block_storage.wait_for_delete(snap, interval=0.5, wait=timeout)
        conn.compute.delete_server(srv, ignore_missing=True)
        conn.compute.wait_for_delete(srv, interval=0.5, wait=timeout)
        deadline = time.monotonic() + timeout
        for vid in own_volumes:  # nova deletes them asynchronously
            while conn.block_storage.find_volume(vid, ignore_missing=True) is not None:
                if time.monotonic() > deadline:
                    raise StackError("root volume %s of server %s was not deleted"
                                     % (vid, sid))
                time.sleep(0.5)

    @contextlib.contextmanager
    def server(self, conn, **kwargs):
        """boot_server(**kwargs); delete_server() afterwards, restarting any
        service a test stopped first (nova-compute must run to delete)."""
        server = self.boot_server(conn, **kwargs)
        try:
            yield server
        finally:
            self.ensure_running()
            self.delete_server(conn, server)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("start")
    stop = sub.add_parser("stop")
    stop.add_argument("--purge", action="store_true",
                      help="also delete all state except the venv")
    sub.add_parser("status")
    sub.add_parser("env", help="print export OS_CLIENT_CONFIG_FILE=...")
    for cmd in ("stop-service", "start-service"):
        sub.add_parser(cmd).add_argument("name", choices=SERVICES)
    args = ap.parse_args(argv)
    stack = OpenStackStack()
    try:
        if args.cmd == "start":
            stack.start(echo=True)
        elif args.cmd == "stop":
            stack.stop(purge=args.purge, echo=True)
        elif args.cmd == "stop-service":
            stack.stop_service(args.name)
        elif args.cmd == "start-service":
            stack.start_service(args.name)
        elif args.cmd == "env":
            for key, value in stack.environ().items():
                print("export %s=%s" % (key, value))
        else:
            status = stack.status()
            for name in SERVICES:
                pid = status[name]
                port = PORTS.get(name)
                if name == "mariadb":
                    port = int(stack.env.get("OS_STACK_DB_PORT") or port)
                print("%-17s %-8s %s" % (name, "pid %d" % pid if pid else "stopped",
                                         "127.0.0.1:%d" % port if port else ""))
            print("state dir: %s" % stack.state_dir)
            return 0 if all(status.values()) else 3
    except StackError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Our own directory first on sys.path would make this file 'openstack'.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.exit(main())

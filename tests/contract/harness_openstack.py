"""OpenStack harness: the contract suite against the local OpenStack services.

The stack (tests/services/openstack/) is started once per session by
shared_stack() -- start.sh is idempotent and fails loudly, so a stack that
cannot start fails the tests, never skips them. It is left running for the
rest of the session and for other test files (tests/openstack) that share it.
Guests are servers booted as the plain member of cloud ``stack-demo`` with
flavor ``tiny``, image ``tiny-test-image`` and no network; each test's servers
(and their snapshots) are deleted after it.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Dict, List

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from contract.harness import ProviderHarness
from services.openstack import OpenStackStack

CLOUD = 'stack-demo'
_SHARED: Dict[str, Any] = {}
_POWER = {'ACTIVE': 'running', 'SHUTOFF': 'off', 'PAUSED': 'paused', 'SUSPENDED': 'suspended'}


def shared_stack() -> OpenStackStack:
    """The session's running stack (start.sh once); raises StackError if it cannot start."""
    stack = _SHARED.get('stack')
    if stack is None:
        stack = OpenStackStack()
        stack.start()
        os.environ.update(stack.environ())
        _SHARED['stack'] = stack
    return stack


def connection(**extra: Any) -> Dict[str, Any]:
    conn: Dict[str, Any] = {'cloud': CLOUD, 'interface': 'public', 'validate_certs': True}
    conn.update(extra)
    return conn


def unique(prefix: str = 'ostest') -> str:
    return '%s-%s' % (prefix, uuid.uuid4().hex[:8])


class StackServers:
    """Servers made through openstacksdk directly (not the backend under test), deleted by cleanup()."""

    def __init__(self, stack: OpenStackStack) -> None:
        self.stack = stack
        self.conn = stack.connect(CLOUD)
        self.made: List[Any] = []

    def boot(self, **kwargs: Any) -> Any:
        server = self.stack.boot_server(self.conn, name=kwargs.pop('name', None) or unique(), **kwargs)
        self.made.append(server)
        return server

    def get(self, server_id: str) -> Any:
        return self.conn.compute.get_server(server_id)

    def power_state(self, ref: GuestRef) -> str:
        if ref.id:
            server = self.get(ref.id)
        else:
            server = next(s for s in self.conn.compute.servers(name=ref.name) if s.name == ref.name)
        return _POWER.get(server.status, server.status)

    def cleanup(self) -> None:
        made, self.made = self.made, []
        errors = []
        for server in made:
            try:
                self.stack.ensure_running()
                self.stack.delete_server(self.conn, server)
            except Exception as exc:  # keep cleaning the others, then report
                errors.append('%s: %s' % (server.id, exc))
        if errors:
            raise AssertionError('cleanup of OpenStack servers failed: %s' % '; '.join(errors))


class Runner:
    """Runs engine requests through a fresh OpenStackBackend, as a module would."""

    def __init__(self, timeout: float = 90.0, **conn) -> None:
        self.timeout = timeout
        self.conn = connection(**conn)

    def backend(self) -> OpenStackBackend:
        return OpenStackBackend(self.conn)

    def run(self, state, ref, name=None, check_mode=False, timeout=None, **kwargs):
        spec = None
        if state == 'present':
            spec = SnapshotSpec(name=name, marker=make_marker(None, 'tests/openstack', kwargs.pop('expires_in', None)),
                                description=kwargs.pop('description', ''), options=kwargs.pop('options', {}))
        request = Request(state=state, guests=[ref] if isinstance(ref, GuestRef) else list(ref),
                          snapshot_name=name, spec=spec, **kwargs)
        with self.backend() as backend:
            engine = SnapshotEngine(backend, check_mode=check_mode,
                                    wait_policy=WaitPolicy(timeout=timeout or self.timeout))
            return engine.run(request)

    def snapshots(self, ref):
        with self.backend() as backend:
            return {s.name: s for s in backend.list_snapshots(backend.find_guest(ref))}


class OpenStackHarness(ProviderHarness):
    name = 'openstack'
    mark = 'openstack'
    timeout = 90.0

    def start(self) -> None:
        self.stack = shared_stack()
        self.servers = StackServers(self.stack)

    def stop(self) -> None:
        self.servers.conn.close()

    def backend(self) -> OpenStackBackend:
        return OpenStackBackend(connection())

    def new_guest(self) -> GuestRef:
        return GuestRef(name=self.servers.boot().name)

    def power_state(self, ref: GuestRef) -> str:
        return self.servers.power_state(ref)

    def cleanup(self) -> None:
        self.servers.cleanup()


HARNESSES = [OpenStackHarness]

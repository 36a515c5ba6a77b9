"""Fixtures of the OpenStack tests: the session's local stack (see contract/harness_openstack.py).

The stack is started (or found running) once; a stack that cannot start fails
these tests. Servers are booted as the plain member of cloud ``stack-demo``
and deleted after each test, with their snapshots.
"""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from contract.harness_openstack import StackServers, connection, shared_stack


@pytest.fixture(scope='session')
def stack():
    return shared_stack()


@pytest.fixture
def servers(stack):
    made = StackServers(stack)
    yield made
    try:
        made.cleanup()
    finally:
        made.conn.close()


@pytest.fixture
def sdk(servers):
    """An openstacksdk connection independent of the backend under test."""
    return servers.conn


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
                                description=kwargs.pop('description', ''))
        request = Request(state=state, guests=[ref] if isinstance(ref, GuestRef) else list(ref),
                          snapshot_name=name, spec=spec, **kwargs)
        with self.backend() as backend:
            engine = SnapshotEngine(backend, check_mode=check_mode,
                                    wait_policy=WaitPolicy(timeout=timeout or self.timeout))
            return engine.run(request)

    def snapshots(self, ref):
        with self.backend() as backend:
            return {s.name: s for s in backend.list_snapshots(backend.find_guest(ref))}


@pytest.fixture
def runner(stack):
    return Runner()

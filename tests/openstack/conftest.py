"""Fixtures of the OpenStack tests: the session's local stack (see contract/harness_openstack.py).

The stack is started (or found running) once; a stack that cannot start fails
these tests. Servers are booted as the plain member of cloud ``stack-demo``
and deleted after each test, with their snapshots.
"""

from __future__ import annotations

import pytest

from contract.harness_openstack import Runner, StackServers, shared_stack


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


@pytest.fixture
def runner(stack):
    return Runner()

"""Fixtures of the VMware tests: the session's shared vcsim (see contract/harness_vmware.py)."""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import VmwareBackend

from contract.harness_vmware import VcsimInventory, connection, shared_vcsim


@pytest.fixture(scope='session')
def vcsim():
    return shared_vcsim()


@pytest.fixture
def inventory(vcsim):
    inv = VcsimInventory(vcsim)
    yield inv
    inv.destroy_made()
    inv.close()


@pytest.fixture
def conn(vcsim):
    """Connection options for the shared vcsim (certificate not verified, capability flags not honoured)."""
    return connection(vcsim)


@pytest.fixture
def backend(conn):
    with VmwareBackend(conn) as be:
        yield be

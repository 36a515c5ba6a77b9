"""Fixtures the integration tests share: VMs of the shared vcsim and servers of the shared OpenStack
stack, each removed after its test (imports inside, so a test of one provider needs no other SDK)."""

from __future__ import annotations

import pytest


@pytest.fixture
def vcsim_inventory():
    from contract.harness_vmware import VcsimInventory, shared_vcsim
    inv = VcsimInventory(shared_vcsim())
    yield inv
    inv.destroy_made()
    inv.close()


@pytest.fixture
def servers():
    from contract.harness_openstack import StackServers, shared_stack
    made = StackServers(shared_stack())
    yield made
    try:
        made.cleanup()
    finally:
        made.conn.close()

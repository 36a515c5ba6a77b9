# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VMware vSphere backend (pyVmomi): snapshots of virtual machines on vCenter or ESXi.

Round trips are what a vSphere task costs, so every lookup is a constant
number of calls whatever the inventory size, and tasks are waited for all
together through the property collector (WaitForUpdatesEx), never polled one
by one.

The package, one job per file (each builds on the one before):

- ``sdk.py``: pyVmomi imported on first use; vSphere faults and network errors as engine errors
- ``transport.py``: SOAP requests through pyVmomi's stub, sent and read apart, several under way at once
- ``fast_props.py``: property retrievals parsed by ElementTree into pyVmomi's objects
- ``session.py``: connection options, login/logout, fault-mapping calls, property-collector reads
- ``lookups.py``: guests by name, folder, UUID or moid, one or many at once
- ``starts.py``: task starts, one at a time or a sliding window's together
- ``tree.py``: a VM's snapshot tree as records (pure)
- ``snapshots.py``: capabilities; create/revert/delete tasks and the checks after them
- ``tasks.py``: the task waiter (stands alone: a property collector and operations)
- ``lease.py``: the leases of one run at a time per VM, one entry per run in a registry folder per datacenter
- ``backend.py``: ``VmwareBackend``, which puts them together
"""

from __future__ import annotations

from .backend import VmwareBackend
from .sdk import fault_message, load_pyvmomi, translate
from .tree import power_after_revert, snapshot_records

__all__ = ['VmwareBackend', 'fault_message', 'load_pyvmomi', 'power_after_revert', 'snapshot_records',
           'translate']

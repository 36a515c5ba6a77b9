# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a VM can do, and its snapshots: reading the tree, starting create/revert/delete tasks and their checks."""

from __future__ import annotations

import functools
from typing import Any, List, Optional, Tuple

from ..._errors import GuestNotFoundError, ProviderError, SnapshotNotFoundError
from ..._model import Capabilities, Guest, SnapshotRecord, SnapshotSpec
from ..._ownership import encode_description, read_description
from ..._waiting import Operation
from . import sdk
from .starts import SoapCall, VmwareStarts
from .sdk import CAPABILITY_FLAGS, POWER
from .tree import has_tree, layout_of, power_after_revert, raw_description, snapshot_records


class VmwareSnapshots(VmwareStarts):
    """Capabilities and snapshot operations on top of the lookups."""

    # -- capabilities ----------------------------------------------------------
    def capabilities(self, guest: Guest) -> Capabilities:
        if guest.id not in self._props:
            self.refresh_guest(guest)
        props = self._props[guest.id]
        flags = {flag: bool(props.get('capability.%s' % flag)) for flag in CAPABILITY_FLAGS}
        caps = Capabilities(memory=True, quiesce=True, internal=True, external=False, revert=True,
                            revert_external=False, delete_children=True, rename=True,
                            consolidate=True)
        reasons = caps.reasons
        reasons['external'] = ('VMware snapshots are always internal (delta disks managed by vSphere); '
                               'use kind: internal')
        power = guest.power_state
        if power != 'running':
            caps.memory = False
            reasons['memory'] = "guest '%s' is %s: there is no memory state to save" % (guest.name, power)
        tools = props.get('guest.toolsRunningStatus')
        if power != 'running':
            caps.quiesce = False
            reasons['quiesce'] = "guest '%s' is %s; quiescing needs a running guest with VMware Tools" % (
                guest.name, power)
        elif tools != 'guestToolsRunning':
            # vSphere silently ignores quiesce=true without running Tools: refuse instead.
            caps.quiesce = False
            reasons['quiesce'] = "VMware Tools are not running in guest '%s' (toolsRunningStatus %s)" % (
                guest.name, tools)
        if self.honor_capability_flags:
            hint = (" (vSphere reports capability.%s false; if this server's flags are wrong, as vcsim's are, "
                    "set honor_capability_flags: false to let the server decide)")
            if not flags['snapshotOperationsSupported']:
                caps.internal = False
                reasons['internal'] = ("vSphere says guest '%s' does not support snapshots" % guest.name
                                       + hint % 'snapshotOperationsSupported')
            if caps.memory and not flags['memorySnapshotsSupported']:
                caps.memory = False
                reasons['memory'] = ("guest '%s' cannot take memory snapshots" % guest.name
                                     + hint % 'memorySnapshotsSupported')
            if caps.quiesce and not flags['quiescedSnapshotsSupported']:
                caps.quiesce = False
                reasons['quiesce'] = ("guest '%s' cannot take quiesced snapshots" % guest.name
                                      + hint % 'quiescedSnapshotsSupported')
            if not flags['revertToSnapshotSupported']:
                caps.revert = False
                reasons['revert'] = ("guest '%s' cannot be reverted" % guest.name
                                     + hint % 'revertToSnapshotSupported')
        return caps

    def prepare_spec(self, guest: Guest, spec: SnapshotSpec, warnings: List[str]) -> SnapshotSpec:
        # vSphere's default (and the one that does not stun the guest for a memory dump): no memory.
        return SnapshotSpec(**dict(spec.__dict__, memory=bool(spec.memory)))

    # -- snapshots ---------------------------------------------------------------
    def _snapshot_state(self, guest: Guest, fresh: bool) -> Tuple[Any, Any]:
        props = self._props.get(guest.id)
        if props is not None and props.get('_fresh') and has_tree(props):
            pass   # read after this run's last write on the guest ended (VmwareBackend._read_after)
        elif fresh or props is None or '_snapshots_used' in props:
            props = self._read_vms([guest.handle], "reading the snapshots of guest '%s'" % guest.name).get(guest.id)
            if props is None:
                raise GuestNotFoundError("vmware guest '%s' (id %s) has gone" % (guest.name, guest.id))
            self._props[guest.id] = props
        elif not has_tree(props):
            self._read_trees()
        props['_snapshots_used'] = True
        return props.get('snapshot'), layout_of(props)

    def _read_trees(self) -> None:
        """The trees of every guest of this session read without one (a lookup reads none), in one call:
        the first guest whose snapshots are listed costs what all of them cost, the others nothing."""
        lacking = {moid: props for moid, props in self._props.items() if '_obj' in props and not has_tree(props)}
        found = self._retrieve([props['_obj'] for props in lacking.values()], sdk.vim.VirtualMachine,
                               sdk.TREE_PROPS, 'reading the snapshot trees of %d guests' % len(lacking))
        self._read_layouts(found, 'reading the snapshot trees of %d guests' % len(lacking))
        for moid, props in lacking.items():
            if moid not in found:
                raise GuestNotFoundError("vmware guest '%s' (id %s) has gone" % (props.get('name', moid), moid))
            props.update({path: found[moid].get(path) for path in sdk.LAYOUT_PROPS})
            props['_paths'] = frozenset(props.get('_paths', ())) | frozenset(sdk.TREE_PROPS)

    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        # The first read after a lookup uses the properties fetched with it; later reads go to the server.
        info, layout = self._snapshot_state(guest, fresh=False)
        return snapshot_records(info, layout)

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        vm = guest.handle
        quiesce = spec.quiesce != 'never'
        op = self._start('create', guest, spec.name, SoapCall(
            vm, 'CreateSnapshot', name=spec.name, description=encode_description(spec.description, spec.marker),
            memory=bool(spec.memory), quiesce=quiesce),
            "creating snapshot '%s' of guest '%s'" % (spec.name, guest.name))
        op.follow_up = lambda: self._verify_created(op, spec)
        return op

    def _verify_created(self, op: Operation, spec: SnapshotSpec) -> Optional[Operation]:
        """vSphere may drop memory or quiescing without a fault: check what it recorded."""
        guest = op.guest
        info, layout = self._snapshot_state(guest, fresh=True)
        moid = getattr(op.result, '_moId', None)
        record = next((r for r in snapshot_records(info, layout) if r.id == moid), None)
        if record is None:
            raise ProviderError("vSphere reported snapshot '%s' of guest '%s' as created (%s) but it is not in the "
                                "guest's snapshot tree" % (spec.name, guest.name, moid))
        dropped = []
        if spec.memory and not record.memory:
            dropped.append('memory was asked but vSphere stored no memory file')
        if spec.quiesce != 'never' and record.quiesced is False:
            dropped.append('quiescing was asked but vSphere recorded the snapshot as not quiesced')
        if not dropped:
            op.result = record   # the engine's read-back: no second read of the tree
            return None
        problem = "snapshot '%s' of guest '%s' is not what was asked: %s" % (
            spec.name, guest.name, '; '.join(dropped))
        snap = sdk.vim.vm.Snapshot(moid, self._stub())
        cleanup = self._start('delete', guest, spec.name, SoapCall(snap, 'Remove', removeChildren=False,
                                                                   consolidate=True), '%s; removing it again' % problem)

        def report() -> None:
            raise ProviderError('%s; it was removed again, nothing was kept' % problem)
        cleanup.follow_up = report
        return cleanup

    def start_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Operation:
        snap = sdk.vim.vm.Snapshot(snapshot.id, self._stub())
        op = self._start('revert', guest, snapshot.name,
                         SoapCall(snap, 'Revert', suppressPowerOn=power_state == 'off'),
                         "reverting guest '%s' to snapshot '%s'" % (guest.name, snapshot.name))
        want = power_after_revert(snapshot, power_state)
        op.follow_up = lambda: self._enforce_power(guest, want, snapshot.name)
        return op

    def _power_state(self, guest: Guest) -> str:
        props = self._fresh_props(guest) or self._retrieve(
            [guest.handle], sdk.vim.VirtualMachine, ['runtime.powerState'],
            "reading the power state of guest '%s'" % guest.name).get(guest.id, {})
        return POWER.get(str(props.get('runtime.powerState')), 'unknown')

    def _enforce_power(self, guest: Guest, want: str, snapshot_name: str, attempt: int = 0) -> Optional[Operation]:
        """Bring the guest to ``want`` after a revert, whatever the server did, and check it."""
        have = self._power_state(guest)
        guest.power_state = have
        if have == want:
            return None
        if attempt >= 2:
            raise ProviderError("guest '%s' is %s after reverting to '%s', not %s as asked"
                                % (guest.name, have, snapshot_name, want))
        vm = guest.handle
        doing = "making guest '%s' %s after reverting to '%s'" % (guest.name, want, snapshot_name)
        if want == 'off':
            fn = vm.PowerOffVM_Task
        elif want == 'running' or (want == 'suspended' and have == 'off'):
            fn = vm.PowerOnVM_Task
        elif want == 'suspended':
            fn = vm.SuspendVM_Task
        else:
            raise ProviderError("guest '%s' is %s after the revert; cannot make it %s" % (guest.name, have, want))
        op = self._start('power', guest, snapshot_name, fn, doing)
        op.follow_up = lambda: self._enforce_power(guest, want, snapshot_name, attempt + 1)
        return op

    def start_delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> Operation:
        snap = sdk.vim.vm.Snapshot(snapshot.id, self._stub())
        return self._start('delete', guest, snapshot.name,
                           SoapCall(snap, 'Remove', removeChildren=remove_children, consolidate=True),
                           "deleting snapshot '%s' of guest '%s'" % (snapshot.name, guest.name))

    def start_rename(self, guest: Guest, snapshot: SnapshotRecord, new_name: Optional[str],
                     new_description: Optional[str]) -> Operation:
        """RenameSnapshot (synchronous); a new description keeps the snapshot's ownership marker line."""
        snap = sdk.vim.vm.Snapshot(snapshot.id, self._stub())
        args = {}
        if new_name:
            args['name'] = new_name
        if new_description is not None:
            info, _layout = self._snapshot_state(guest, fresh=True)
            raw = raw_description(info, snapshot.id)
            if raw is None:
                raise SnapshotNotFoundError("snapshot '%s' of guest '%s' has gone" % (snapshot.name, guest.name))
            _text, marker, _problem = read_description(raw)
            args['description'] = encode_description(new_description, marker) if marker else new_description
        doing = "renaming snapshot '%s' of guest '%s'" % (snapshot.name, guest.name)
        self._call(functools.partial(snap.RenameSnapshot, **args), doing)
        self._props.pop(guest.id, None)
        op = Operation(action='rename', guest=guest, snapshot_name=snapshot.name, handle=None, id=snapshot.id)
        op.finish()
        return op

    def start_consolidate(self, guest: Guest, force: bool) -> Optional[Operation]:
        """ConsolidateVMDisks_Task when vSphere says the guest needs it after the removals (or ``force``)."""
        if not force:
            props = self._fresh_props(guest) or self._retrieve(
                [guest.handle], sdk.vim.VirtualMachine, ['runtime.consolidationNeeded'],
                "reading whether guest '%s' needs disk consolidation" % guest.name).get(guest.id, {})
            if not props.get('runtime.consolidationNeeded'):
                return None
        vm = guest.handle
        return self._start('consolidate', guest, '(disks)', vm.ConsolidateVMDisks_Task,
                           "consolidating the disks of guest '%s'" % guest.name)

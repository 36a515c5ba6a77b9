# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a VM's snapshot tree (``vm.snapshot`` + ``vm.layoutEx``) into records; pure functions."""

from __future__ import annotations

import types
from typing import Any, Dict, List, Optional

from ..._model import SnapshotRecord, to_iso
from ..._ownership import read_description
from .sdk import POWER


def power_after_revert(snapshot: SnapshotRecord, power_state: str) -> str:
    """The guest's power state after a revert: forced, or as vCenter restores it.

    ``restore``: the state recorded in a memory snapshot (running or suspended), off for a disk-only one.
    """
    forced = {'on': 'running', 'off': 'off'}.get(power_state)
    if forced is not None:
        return forced
    if snapshot.memory and snapshot.power_state in ('running', 'suspended'):
        return snapshot.power_state
    return 'off'


def has_tree(props: Dict[str, Any]) -> bool:
    """Whether ``props`` (VmwareSession._read_vms) hold the VM's snapshot tree (None: it has no snapshots)."""
    return 'snapshot' in props.get('_paths', ())


def layout_of(props: Dict[str, Any]) -> Any:
    """The parts of ``layoutEx`` read with the tree (sdk.LAYOUT_PROPS), as snapshot_records takes them."""
    return types.SimpleNamespace(file=props.get('layoutEx.file'), snapshot=props.get('layoutEx.snapshot'))


def snapshot_records(info: Any, layout: Any) -> List[SnapshotRecord]:
    """The flat list of records of a VM's snapshot tree (``vm.snapshot``) with sizes from ``vm.layoutEx``."""
    if info is None:
        return []
    current = getattr(info.currentSnapshot, '_moId', None)
    files = {f.key: f for f in (getattr(layout, 'file', None) or [])}
    layouts = {s.key._moId: s for s in (getattr(layout, 'snapshot', None) or [])} if layout is not None else {}
    records: List[SnapshotRecord] = []

    def walk(nodes: List[Any], parent: Optional[SnapshotRecord]) -> None:
        for node in nodes or []:
            moid = node.snapshot._moId
            description, marker, marker_problem = read_description(node.description)
            state = str(node.state)
            snap_layout = layouts.get(moid)
            memory = (snap_layout.memoryKey not in (None, -1)) if snap_layout is not None else state != 'poweredOff'
            record = SnapshotRecord(
                name=node.name, id=moid, parent=parent.name if parent else None,
                parent_id=parent.id if parent else None,
                created_at=to_iso(node.createTime) if node.createTime else None,
                current=moid == current, power_state=POWER.get(state, 'unknown'), memory=memory,
                quiesced=bool(node.quiesced), kind='internal', description=description,
                provider_details={'state': state, 'snapshot_id': node.id, 'vm': node.vm._moId if node.vm else None,
                                  'replay_supported': node.replaySupported})
            record.apply_marker(marker)
            record.marker_problem = marker_problem
            record.size_bytes = _snapshot_size(snap_layout, layouts.get(parent.id) if parent else None, files)
            if parent is not None:
                parent.children.append(record.name)
            records.append(record)
            walk(node.childSnapshotList, record)

    walk(info.rootSnapshotList, None)
    return records


def _snapshot_size(snap: Any, parent: Any, files: Dict[int, Any]) -> Optional[int]:
    """Bytes of the snapshot's own files per layoutEx; None when the layout does not tell.

    Its state files (.vmsn, .vmem) plus, for each disk, the delta units its
    chain has beyond its parent's (never the base disk).
    """
    if snap is None or not files:
        return None
    keys = [k for k in (snap.dataKey, snap.memoryKey) if k not in (None, -1)]
    parent_chains = {}
    if parent is not None:
        parent_chains = {d.key: [tuple(u.fileKey) for u in d.chain or []] for d in parent.disk or []}
    for disk in snap.disk or []:
        chain = [tuple(u.fileKey) for u in disk.chain or []]
        before = parent_chains.get(disk.key, chain[:1])
        for unit in chain[1:]:
            if unit not in before:
                keys.extend(unit)
    total = 0
    for key in keys:
        entry = files.get(key)
        if entry is None or entry.size is None:
            return None
        total += entry.size
    return total


def raw_description(info: Any, moid: str) -> Optional[str]:
    """The stored description (marker line included) of snapshot ``moid``; None when it is not in the tree."""
    frontier = list(getattr(info, 'rootSnapshotList', None) or [])
    while frontier:
        node = frontier.pop()
        if node.snapshot._moId == moid:  # pylint: disable=protected-access
            return node.description or ''
        frontier.extend(node.childSnapshotList or [])
    return None

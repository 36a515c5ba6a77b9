# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt's XML documents, read and written: a domain snapshot as a SnapshotRecord, the
snapshot a create asks for, and the domain's writable disks. ElementTree only (no libvirt
call), so that what the backend reads and sends can be tested without a hypervisor."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from typing import Callable, List, Optional

from ..._model import Marker, SnapshotRecord, SnapshotSpec, to_iso
from ..._ownership import encode_description, read_description

#: a snapshot's <state> (the domain's state when it was taken) as the engine names power states
SNAPSHOT_STATES = {'running': 'running', 'blocked': 'running', 'paused': 'paused', 'shutdown': 'running',
                   'shutoff': 'off', 'crashed': 'off', 'pmsuspended': 'suspended',
                   'disk-snapshot': 'running'}


def _text(node: Optional[ET.Element], path: str) -> Optional[str]:
    found = node.find(path) if node is not None else None
    return found.text if found is not None and found.text is not None else None


def _epoch(text: str) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(text), tz=datetime.timezone.utc)


def _source_file(disk: ET.Element) -> Optional[str]:
    source = disk.find('source')
    return source.get('file') if source is not None else None


def snapshot_record(xml_text: str, fallback_name: str, current_name: Optional[str],
                    overlay_size: Callable[[List[Optional[str]]], Optional[int]]) -> SnapshotRecord:
    """A <domainsnapshot> document as a record; overlay_size gives the bytes of external overlay files."""
    root = ET.fromstring(xml_text)
    name = _text(root, 'name') or fallback_name
    description, marker, marker_problem = read_description(_text(root, 'description'))
    memory_node = root.find('memory')
    memory_mode = memory_node.get('snapshot') if memory_node is not None else 'no'
    disks = root.findall('./disks/disk')
    external = [d for d in disks if d.get('snapshot') == 'external']
    created = _text(root, 'creationTime')
    record = SnapshotRecord(
        name=name, id=name,
        parent=_text(root, 'parent/name'), parent_id=_text(root, 'parent/name'),
        created_at=to_iso(_epoch(created)) if created else None,
        current=name == current_name,
        power_state=SNAPSHOT_STATES.get(_text(root, 'state') or '', 'unknown'),
        memory=memory_mode in ('internal', 'external'),
        kind='external' if external else 'internal',
        description=description,
        provider_details={'state': _text(root, 'state'),
                          'disks': {d.get('name'): d.get('snapshot') for d in disks}},
    )
    record.apply_marker(marker)
    record.marker_problem = marker_problem
    if external:
        overlays = [_source_file(d) for d in external]
        record.size_bytes = overlay_size(overlays)
        record.provider_details['overlays'] = overlays
    return record


def snapshot_xml(spec: SnapshotSpec, external_disks: Optional[List[str]]) -> str:
    """The <domainsnapshot> a create sends: name, description with the ownership marker, and for an
    external snapshot one external <disk> per target in external_disks."""
    root = ET.Element('domainsnapshot')
    ET.SubElement(root, 'name').text = spec.name
    ET.SubElement(root, 'description').text = encode_description(spec.description, spec.marker)
    if external_disks is not None:
        disks = ET.SubElement(root, 'disks')
        for target in external_disks:
            ET.SubElement(disks, 'disk', name=target, snapshot='external')
    return ET.tostring(root, encoding='unicode')


def with_marker(xml_text: str, description: str, marker: Marker) -> str:
    """A snapshot's XML with its description (the user's text and ``marker``) replaced, to redefine it."""
    root = ET.fromstring(xml_text)
    node = root.find('description')
    if node is None:
        node = ET.SubElement(root, 'description')
    node.text = encode_description(description, marker)
    return ET.tostring(root, encoding='unicode')


def disk_targets(domain_xml: str) -> List[str]:
    """Target names (vda, ...) of the domain's writable disks: the ones an external snapshot covers."""
    root = ET.fromstring(domain_xml)
    targets = []
    for disk in root.findall('./devices/disk'):
        if disk.get('device', 'disk') != 'disk' or disk.find('readonly') is not None:
            continue
        target = disk.find('target')
        if target is not None and target.get('dev'):
            targets.append(target.get('dev'))
    return targets

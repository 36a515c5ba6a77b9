"""The libvirt backend's XML (snapshot_xml.py): what it reads back and what a create sends, without a hypervisor."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt.snapshot_xml import (
    disk_targets, snapshot_record, snapshot_xml,
)
from ansible_collections.savepoint.virt.plugins.module_utils._model import SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker

EXTERNAL = '''<domainsnapshot>
  <name>pre-patch</name><description>before</description><state>running</state>
  <creationTime>1764590400</creationTime><parent><name>base</name></parent>
  <memory snapshot='no'/>
  <disks>
    <disk name='vda' snapshot='external'><source file='/var/lib/libvirt/images/web.pre-patch'/></disk>
    <disk name='vdb' snapshot='no'/>
  </disks>
</domainsnapshot>'''


def test_an_external_snapshot_read_back():
    asked = []
    record = snapshot_record(EXTERNAL, 'ignored', 'pre-patch', lambda paths: asked.append(paths) or 4096)
    assert (record.name, record.id, record.parent, record.parent_id) == ('pre-patch', 'pre-patch', 'base', 'base')
    assert record.kind == 'external' and record.memory is False and record.current is True
    assert record.power_state == 'running' and record.created_at.startswith('2025-12-01T12:00:00')
    assert record.size_bytes == 4096 and asked == [['/var/lib/libvirt/images/web.pre-patch']]
    assert record.provider_details['disks'] == {'vda': 'external', 'vdb': 'no'}
    assert record.provider_details['overlays'] == ['/var/lib/libvirt/images/web.pre-patch']


def test_an_internal_snapshot_with_memory_and_no_name_in_the_xml():
    text = "<domainsnapshot><state>shutoff</state><memory snapshot='internal'/></domainsnapshot>"
    record = snapshot_record(text, 'from-libvirt', None, lambda paths: 1 / 0)  # no overlay: never asked
    assert record.name == 'from-libvirt' and record.kind == 'internal' and record.memory is True
    assert record.power_state == 'off' and record.current is False and record.size_bytes is None


def test_the_create_xml_carries_the_marker_and_reads_back_as_owned():
    spec = SnapshotSpec(name='pre-patch', description='before', marker=make_marker('team-a', 'savepoint.virt.x', '1d'))
    sent = snapshot_xml(spec, ['vda', 'vdb'])
    root = ET.fromstring(sent)
    assert [(d.get('name'), d.get('snapshot')) for d in root.findall('./disks/disk')] == [
        ('vda', 'external'), ('vdb', 'external')]
    record = snapshot_record(sent, 'x', None, lambda paths: None)
    assert record.description == 'before' and record.owner == 'team-a' and record.expires_at
    assert ET.fromstring(snapshot_xml(spec, None)).find('disks') is None


def test_disk_targets_are_the_writable_disks():
    domain = '''<domain><devices>
      <disk device='disk'><target dev='vda'/></disk>
      <disk device='cdrom'><target dev='sda'/></disk>
      <disk device='disk'><readonly/><target dev='vdb'/></disk>
      <disk><target dev='vdc'/></disk>
      <disk device='disk'/>
    </devices></domain>'''
    assert disk_targets(domain) == ['vda', 'vdc']


def test_with_marker_replaces_only_the_description_and_keeps_the_pause():
    from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt.snapshot_xml import (
        snapshot_record, with_marker,
    )
    from ansible_collections.savepoint.virt.plugins.module_utils._model import Marker
    original = ('<domainsnapshot><name>pre</name><description>old</description><state>running</state>'
                '<memory snapshot="internal"/><domain type="kvm"><name>web</name></domain></domainsnapshot>')
    marker = Marker(owner='team', created_by='t', guest_blocked_seconds=0.42)
    rewritten = with_marker(original, 'before the patch', marker)
    assert '<domain type="kvm"><name>web</name></domain>' in rewritten and '<state>running</state>' in rewritten
    record = snapshot_record(rewritten, 'pre', 'pre', lambda _files: None)
    assert record.description == 'before the patch' and record.owner == 'team'
    assert record.guest_blocked_seconds == 0.42 and record.memory is True

"""The Linux test guest's libvirt domain XML, rendered without libvirt (pure logic)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from services.linux_guest import LinuxGuest

QEMU_NS = '{http://libvirt.org/schemas/domain/qemu/1.0}'


def render(**kw) -> ET.Element:
    guest = LinuxGuest(prefix='sp-unit', build_dir=Path('/cache'), **kw)
    guest.artifacts = Path('/cache/v-1')
    guest.ssh_port, guest.http_port = 40001, 40002
    text = guest.domain_xml()
    assert '@' not in text.split('-->', 1)[1], 'a placeholder was left unfilled'
    return ET.fromstring(text)


def test_every_field_is_filled_and_forwards_bind_loopback_only():
    root = render()
    assert root.findtext('name').startswith('sp-unit-') and len(root.findtext('uuid')) == 36
    assert root.findtext('os/initrd') == '/cache/v-1/initrd.cpio.gz'
    assert root.find('devices/disk/source').get('file').startswith('/cache/run/sp-unit-')
    args = [a.get('value') for a in root.iter(QEMU_NS + 'arg')]
    netdev = args[args.index('-netdev') + 1]
    assert 'restrict=on' in netdev
    assert 'hostfwd=tcp:127.0.0.1:40001-:22' in netdev and 'hostfwd=tcp:127.0.0.1:40002-:80' in netdev
    assert netdev.count('hostfwd=') == netdev.count('hostfwd=tcp:127.0.0.1:')
    assert root.find("devices/channel/target[@name='org.qemu.guest_agent.0']") is not None


def test_python_variant_and_a_guest_without_agent_channel():
    root = render(with_python=True, agent=False)
    assert root.findtext('os/initrd') == '/cache/v-1/initrd-python.cpio.gz'
    assert root.find('devices/channel') is None


def test_names_are_unique():
    assert len({LinuxGuest(prefix='sp-unit').name for _index in range(50)}) == 50

"""savepoint.virt.report (FQCN playbook) across libvirt, VMware and OpenStack in one inventory,
and the page it writes as headless Chromium shows it (DOM and screenshot)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from ansible_collections.savepoint.virt.plugins.module_utils import _report

from services import chromium

from .conftest import SECRET, LibvirtWorld, OpenStackWorld, VmwareWorld, owned, wait_past
from .helpers import run_fqcn, write_inventory


EXPIRED_RGB = (0xff, 0xc9, 0xc9)   # tr.expired td background in _report._STYLE


@pytest.fixture(params=[
    # every provider in one inventory; and without OpenStack, whose shared stack is often busy
    pytest.param((LibvirtWorld, VmwareWorld, OpenStackWorld), id='all-providers',
                 marks=[pytest.mark.qemu, pytest.mark.vmware, pytest.mark.openstack, pytest.mark.browser]),
    pytest.param((LibvirtWorld, VmwareWorld), id='libvirt-vmware',
                 marks=[pytest.mark.qemu, pytest.mark.vmware, pytest.mark.browser]),
])
def worlds(request):
    made = []
    try:
        for cls in request.param:
            made.append(cls())
        yield made
    finally:
        for world in made:
            world.cleanup()


def highlighted_pixels(png: Path) -> int:
    image = Image.open(png).convert('RGB')
    return dict((color, count) for count, color in image.getcolors(maxcolors=1 << 24)).get(EXPIRED_RGB, 0)


def dom_rows(dom: str):
    """[(class, provider, guest, snapshot)] of the table's body rows, in page order."""
    return re.findall(r'<tr class="(\w+)" data-provider="([^"]*)" data-guest="([^"]*)" data-snapshot="([^"]*)"', dom)


def test_report_lists_every_snapshot_of_every_provider(worlds, tmp_path):
    hosts, expected = {}, set()
    for world in worlds:
        guest = world.new_guest()
        world.foreign(guest, 'by-hand')
        owned(world, guest, 'soon-gone', expires_in='2s')
        owned(world, guest, 'kept', expires_in='7d')
        hosts['%s-host' % world.provider] = {'savepoint_provider': world.provider, 'savepoint_guest': guest['name'],
                                             'savepoint_connection': world.connection()}
        expected |= {(world.provider, guest['name'], name) for name in ('by-hand', 'soon-gone', 'kept')}
    wait_past(3)
    dest = tmp_path / 'report'
    run = run_fqcn('report', write_inventory(tmp_path, hosts), {'target_hosts': 'fleet', 'report_dest': str(dest)})
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    assert SECRET not in json.dumps(run.data) + run.stderr
    # one snapshot_info task per provider
    reads = [t for t in run.tasks() if 'Read the snapshots of the guests on' in t['name']]
    assert sorted(t['result']['provider'] for t in reads) == sorted(w.provider for w in worlds)

    doc = json.loads((dest / 'snapshots.json').read_text())
    rows = {(r['provider'], r['guest'], r['name']): r for r in doc['snapshots']}
    count = 3 * len(worlds)
    assert set(rows) == expected and doc['count'] == count and doc['expired'] == len(worlds)
    for (provider, _guest, name), row in rows.items():
        assert row['expired'] is (name == 'soon-gone'), row
        assert row['owner'] == (None if name == 'by-hand' else 'savepoint.virt'), row
        assert row['host'] == '%s-host' % provider
        assert row['age_seconds'] is not None and row['age_seconds'] >= 0, row
        assert row['pause'] and row['size'], row
        if name == 'by-hand' or provider != 'libvirt':
            # not taken by this collection, or a provider that does not show it: unknown, never 0
            assert row['pause_seconds'] is None and row['pause'].startswith(('unknown', 'none (guest off)')), row
        else:
            # measured when savepoint.virt took it, kept in its marker, read back by snapshot_info
            assert isinstance(row['pause_seconds'], float) and row['pause_seconds'] >= 0, row
            assert row['pause'] == '%.3fs' % row['pause_seconds'], row
    assert any(r['pause_seconds'] for r in rows.values() if r['provider'] == 'libvirt'), 'a live guest was paused'
    assert all(rows[k]['size_bytes'] is not None for k in rows if k[0] == 'openstack')

    table = run.result('Snapshot report')['msg']
    assert table[0].split()[:4] == ['host', 'guest', 'provider', 'snapshot']
    assert sum('EXPIRED' in line for line in table) == len(worlds)
    assert table[-1] == '%d snapshots, %d expired' % (count, len(worlds))

    page = dest / 'snapshots.html'
    text = page.read_text()
    assert not re.search(r'(src|href)=|https?://|@import|url\(', text), 'the page must load nothing from outside'

    dom = chromium.dump_dom(page)
    shown = dom_rows(dom)
    assert {(p, g, s) for _c, p, g, s in shown} == expected and len(shown) == count
    assert sorted(s for c, _p, _g, s in shown if c == 'expired') == ['soon-gone'] * len(worlds)

    png = chromium.screenshot(page, tmp_path / 'report.png')
    assert highlighted_pixels(png) > len(worlds) * 500, 'the expired rows are not highlighted on screen'


@pytest.mark.browser
def test_page_without_expired_snapshots_shows_no_highlight(tmp_path):
    now = _report.from_iso('2026-01-02T00:00:00Z')
    info = {'provider': 'libvirt', 'guests': [{'guest': {'name': 'g1', 'id': 'u1'}, 'snapshots': [
        {'name': 'a', 'id': '1', 'created_at': '2026-01-01T00:00:00Z', 'expires_at': '2026-02-01T00:00:00Z',
         'owner': 'savepoint.virt', 'size_bytes': 2048, 'power_state': 'running', 'memory': True},
        {'name': 'b', 'id': '2', 'created_at': '2026-01-01T12:00:00Z', 'expires_at': None, 'owner': None,
         'size_bytes': 10, 'power_state': 'off'}]}]}
    rows = _report.rows([{'provider': 'libvirt', 'hosts': ['h1'], 'guests': [{'name': 'g1'}], 'info': info}], now)
    page = tmp_path / 'calm.html'
    page.write_text(_report.page(rows, now))
    assert highlighted_pixels(chromium.screenshot(page, tmp_path / 'calm.png')) == 0
    shown = dom_rows(chromium.dump_dom(page))
    assert [s for _c, _p, _g, s in shown] == ['a', 'b'] and {row[0] for row in shown} == {'ok'}
    # the page sorts itself in the browser, from the link's #sort= (smallest first, then -desc)
    resorted = dom_rows(chromium.dump_dom_url(page.resolve().as_uri() + '#sort=size'))
    assert [s for _c, _p, _g, s in resorted] == ['b', 'a']
    resorted = dom_rows(chromium.dump_dom_url(page.resolve().as_uri() + '#sort=size-desc'))
    assert [s for _c, _p, _g, s in resorted] == ['a', 'b']

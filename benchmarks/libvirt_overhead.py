"""How much the collection adds to libvirt-python for create and revert.

Side by side in one run, on one real QEMU guest: the module's own work
(connect, look up, read the tree, validate, create or revert, read back,
close -- everything but Ansible's process start-up) against the same
operation done with bare libvirt-python (connect, look up, call, close).
Alternating order, median of N each; prints ratios. Not a test: nothing
here asserts a time.

    .venv/bin/python benchmarks/libvirt_overhead.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))

from conftest import COLLECTIONS_ROOT  # noqa: E402  (importing it links ansible_collections.savepoint.virt)
import libvirt  # noqa: E402

from ansible_collections.savepoint.virt.plugins.module_utils._backends.libvirt import LibvirtBackend  # noqa: E402
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine  # noqa: E402
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec  # noqa: E402
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker  # noqa: E402
from services.libvirt import TinyGuest, ensure_daemon  # noqa: E402

URI = 'qemu:///system'


def module_create(guest: str, name: str) -> None:
    with LibvirtBackend({'uri': URI}) as backend:
        SnapshotEngine(backend).run(Request(
            state='present', guests=[GuestRef(name=guest)], snapshot_name=name,
            spec=SnapshotSpec(name=name, marker=make_marker(None, 'benchmark', '1d'))))


def raw_create(guest: str, name: str) -> None:
    conn = libvirt.open(URI)
    try:
        conn.lookupByName(guest).snapshotCreateXML('<domainsnapshot><name>%s</name></domainsnapshot>' % name, 0)
    finally:
        conn.close()


def module_revert(guest: str, name: str) -> None:
    with LibvirtBackend({'uri': URI}) as backend:
        SnapshotEngine(backend).run(Request(state='reverted', guests=[GuestRef(name=guest)], snapshot_name=name))


def raw_revert(guest: str, name: str) -> None:
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(guest)
        dom.revertToSnapshot(dom.snapshotLookupByName(name, 0), 0)
    finally:
        conn.close()


def timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=20)
    args = parser.parse_args()
    ensure_daemon(sys.executable)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(URI)
    guest = TinyGuest(conn).create()
    times = {'module create': [], 'raw create': [], 'module revert': [], 'raw revert': []}
    try:
        guest.dom.snapshotCreateXML('<domainsnapshot><name>base</name></domainsnapshot>', 0)
        for i in range(args.runs):
            pairs = [('module create', module_create), ('raw create', raw_create)]
            for label, func in (pairs if i % 2 == 0 else pairs[::-1]):
                name = 'bench-%d-%s' % (i, label.split()[0])
                times[label].append(timed(func, guest.name, name))
                guest.dom.snapshotLookupByName(name, 0).delete(0)
            pairs = [('module revert', module_revert), ('raw revert', raw_revert)]
            for label, func in (pairs if i % 2 == 0 else pairs[::-1]):
                times[label].append(timed(func, guest.name, 'base'))
    finally:
        guest.destroy()
        conn.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    print('libvirt overhead, %d runs each, alternating, real QEMU (TCG) guest, %s (collection from %s)' % (
        args.runs, time.strftime('%Y-%m-%d'), COLLECTIONS_ROOT))
    for label, value in med.items():
        print('  %-14s median %8.2f ms' % (label, value * 1000))
    print('ratio create (module / raw libvirt-python): %.3f' % (med['module create'] / med['raw create']))
    print('ratio revert (module / raw libvirt-python): %.3f' % (med['module revert'] / med['raw revert']))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Test-wide set-up: make the collection importable as ansible_collections.savepoint.virt."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS_ROOT = REPO / 'build' / 'collections'
LINK = COLLECTIONS_ROOT / 'ansible_collections' / 'savepoint' / 'virt'

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    try:
        LINK.symlink_to(REPO, target_is_directory=True)
    except FileExistsError:  # another xdist worker made it first
        pass
if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))
os.environ.setdefault('ANSIBLE_COLLECTIONS_PATH', str(COLLECTIONS_ROOT))


# -- services: stop at the end what this session started -------------------------------------
# Real services are started on demand by the tests that need them (and fail those
# tests when they cannot start). What this session started is stopped again when
# it ends, so `make test` leaves the machine as it found it -- and a session never
# stops a service that another run on the same machine started.
_RUNNING_BEFORE = {}


def _openstack_running() -> bool:
    from services.openstack import OpenStackStack
    return OpenStackStack().is_running()


def pytest_sessionstart(session):
    _RUNNING_BEFORE['openstack'] = _openstack_running()


def pytest_sessionfinish(session, exitstatus):
    harness = sys.modules.get('contract.harness_openstack')
    used_stack = harness is not None and getattr(harness, '_SHARED', {}).get('stack') is not None
    if used_stack and not _RUNNING_BEFORE.get('openstack', True) and _openstack_running():
        from services.openstack import OpenStackStack
        OpenStackStack().stop()
    libvirt_service = sys.modules.get('services.libvirt')
    if libvirt_service is not None and libvirt_service.STARTED_HERE['daemon']:
        libvirt_service.stop_daemon()


# -- tiny libvirt guests on the real libvirtd (qemu:///system), shared by every suite ------------

@pytest.fixture(scope='module')
def qemu_conn():
    """A connection to the real libvirtd, started first if this machine has none running."""
    import libvirt
    from services.libvirt import ensure_daemon
    ensure_daemon(sys.executable)
    conn = libvirt.open('qemu:///system')
    yield conn
    conn.close()


@pytest.fixture
def tiny_guests(qemu_conn, request):
    """Make tiny no-OS guests with ``tiny_guests()``; all are removed after the test. A test module
    names its guests by setting TINY_GUEST_PREFIX (default ``sp-test``)."""
    from services.libvirt import TinyGuests
    guests = TinyGuests(qemu_conn, prefix=getattr(request.module, 'TINY_GUEST_PREFIX', 'sp-test'))
    yield guests
    guests.destroy()

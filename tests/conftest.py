"""Test-wide set-up: make the collection importable as ansible_collections.savepoint.virt."""

import os
import sys
from pathlib import Path

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
# tests when they cannot start). What was not running before the session is
# stopped again when it ends, so `make test` leaves the machine as it found it.
_RUNNING_BEFORE = {}


def _libvirt_answers() -> bool:
    import subprocess
    return subprocess.run(['bash', str(REPO / 'tests/services/libvirt/up.sh'), 'status'],
                          capture_output=True, check=False).returncode == 0


def _openstack_running() -> bool:
    from services.openstack import OpenStackStack
    return OpenStackStack().is_running()


def pytest_sessionstart(session):
    _RUNNING_BEFORE['libvirt'] = _libvirt_answers()
    _RUNNING_BEFORE['openstack'] = _openstack_running()


def pytest_sessionfinish(session, exitstatus):
    if not _RUNNING_BEFORE.get('openstack', True) and _openstack_running():
        from services.openstack import OpenStackStack
        OpenStackStack().stop()
    if not _RUNNING_BEFORE.get('libvirt', True) and _libvirt_answers():
        from services.libvirt import stop_daemon
        stop_daemon()

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt backend (libvirt-python): internal and external domain snapshots.

One job per file: ``errors`` (libvirt-python and its errors as the engine's),
``snapshot_xml`` (the snapshot and domain XML, read and written; no libvirt call),
``backend`` (session, guests, leases, capabilities, the snapshot calls).
"""

from __future__ import annotations

from .backend import LEASE_CALL_SECONDS, LEASE_NAMESPACE, SYNC_GRACE_SECONDS, LibvirtBackend
from .errors import translate

__all__ = ['LEASE_CALL_SECONDS', 'LEASE_NAMESPACE', 'SYNC_GRACE_SECONDS', 'LibvirtBackend', 'translate']

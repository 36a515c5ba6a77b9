# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every backend the provider-neutral modules can use.

Imported statically (not by name at run time) so that Ansible packs each
backend with the ``snapshot`` / ``snapshot_info`` modules. Each backend guards
its own SDK import, so a missing SDK only matters for that provider.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple, Type

from ._backend import SnapshotBackend
from ._backends.libvirt import LibvirtBackend
from ._backends.openstack import OpenStackBackend
from ._backends.vmware import VmwareBackend

#: the argument-spec keys of a connection option; two backends sharing an option must agree on them
SPEC_KEYS = ('type', 'default', 'no_log', 'choices', 'aliases', 'elements', 'env')


def check_shared_options(backends: Sequence[Type[SnapshotBackend]]) -> None:
    """Backends that share a connection option name (validate_certs) must define it identically:
    every module's argument spec holds each option once, so a difference would silently change
    one provider's behaviour. Raised at import, so no module ever runs with it."""
    seen: Dict[str, Tuple[str, Dict[str, Any]]] = {}
    for backend in backends:
        for option, table in backend.connection_options.items():
            entry = {k: table.get(k) for k in SPEC_KEYS}
            if option in seen and seen[option][1] != entry:
                raise ValueError('connection option %s is defined differently by the %s and %s backends: %s / %s'
                                 % (option, seen[option][0], backend.provider, seen[option][1], entry))
            seen.setdefault(option, (backend.provider, entry))


BACKENDS: Tuple[Type[SnapshotBackend], ...] = (LibvirtBackend, OpenStackBackend, VmwareBackend)
check_shared_options(BACKENDS)

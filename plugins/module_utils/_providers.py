# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every backend the provider-neutral modules can use.

Imported statically (not by name at run time) so that Ansible packs each
backend with the ``snapshot`` / ``snapshot_info`` modules. Each backend guards
its own SDK import, so a missing SDK only matters for that provider.
"""

from __future__ import annotations

from ._backends.libvirt import LibvirtBackend
from ._backends.openstack import OpenStackBackend
from ._backends.vmware import VmwareBackend

# Where backends share an option name (validate_certs), the last one defines it in the neutral
# modules: keep such entries identical (type only; each backend resolves its own default).
BACKENDS = (LibvirtBackend, OpenStackBackend, VmwareBackend)

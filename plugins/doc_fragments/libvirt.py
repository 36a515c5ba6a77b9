# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # libvirt connection options.
    DOCUMENTATION = r'''
options:
  uri:
    description:
      - libvirt connection URI, for example V(qemu:///system), V(qemu+ssh://root@host/system)
        or V(test:///default).
      - If not set, the environment variable E(LIBVIRT_DEFAULT_URI) is used, then V(qemu:///system).
    type: str
requirements:
  - libvirt-python (C(pip install libvirt-python)) where the module runs
'''

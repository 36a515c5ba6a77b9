#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# DOCUMENTATION, EXAMPLES and RETURN are in snapshot.yml beside this file.

from ansible_collections.savepoint.virt.plugins.module_utils._providers import BACKENDS
from ansible_collections.savepoint.virt.plugins.module_utils._module import main_for


def main():
    main_for(BACKENDS, 'snapshot', neutral=True)


if __name__ == '__main__':
    main()

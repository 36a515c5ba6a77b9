"""_lazy_import: the SDK a backend names is bound on first use, and a missing one is said, not raised."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Dict

from ansible_collections.savepoint.virt.plugins.module_utils._lazy_import import import_on_first_use


def test_binds_modules_attributes_and_submodules():
    namespace: Dict[str, Any] = {'json': None, 'dumps': None, 'minidom': None, 'ERR': None}
    assert import_on_first_use(namespace, 'ERR', json='json', dumps='json:dumps', minidom='xml.dom:minidom')
    import json
    import xml.dom.minidom
    assert namespace['json'] is json and namespace['dumps'] is json.dumps
    assert namespace['minidom'] is xml.dom.minidom
    assert namespace['ERR'] is None


def test_a_missing_sdk_binds_nothing_and_keeps_the_traceback():
    namespace: Dict[str, Any] = {'json': None, 'gone': None, 'ERR': None}
    assert not import_on_first_use(namespace, 'ERR', json='json', gone='savepoint_no_such_sdk:thing')
    assert namespace['json'] is None and namespace['gone'] is None
    assert 'savepoint_no_such_sdk' in namespace['ERR'] and 'ModuleNotFoundError' in namespace['ERR']


def test_bound_once():
    namespace: Dict[str, Any] = {'mod': 'already here', 'ERR': None}
    assert import_on_first_use(namespace, 'ERR', mod='savepoint_no_such_sdk')
    assert namespace['mod'] == 'already here'


def test_the_backends_bind_their_sdks_only_when_asked():
    # a fresh interpreter: importing the backends imports no SDK; loading binds the real ones
    code = '''
import sys
from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import sdk
from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import errors
assert 'pyVmomi' not in sys.modules and 'openstack' not in sys.modules, sorted(sys.modules)
assert sdk.load_pyvmomi() and errors.load_openstacksdk()
import pyVmomi, pyVim.connect, openstack, openstack.exceptions, keystoneauth1.exceptions
assert sdk.vim is pyVmomi.vim and sdk.vmodl is pyVmomi.vmodl and sdk.SmartConnect is pyVim.connect.SmartConnect
assert errors.openstack is openstack and errors.os_exc is openstack.exceptions
assert errors.ksa_exc is keystoneauth1.exceptions
assert sdk.PYVMOMI_IMPORT_ERROR is None and errors.OPENSTACK_IMPORT_ERROR is None
'''
    path = os.pathsep.join(p for p in sys.path if p)  # conftest put the collection's root on it
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=path))
    assert proc.returncode == 0, proc.stdout + proc.stderr

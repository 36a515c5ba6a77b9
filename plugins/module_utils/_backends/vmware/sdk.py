# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pyVmomi on first use, and vSphere faults as the engine's errors.

Everything here is shared by the other files of the package; nothing keeps state
but the imported pyVmomi modules (``sdk.vim``, ``sdk.vmodl``), which the other
files reach through this module so that importing the collection never imports
pyVmomi.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any, Callable

from ..._errors import (
    AuthenticationError, CertificateError, ConnectionFailedError, InvalidRequestError, ProviderError,
    QuiesceUnavailableError, SavepointError, SnapshotNotFoundError, UnsupportedError,
)
from ..._lazy_import import import_on_first_use

PYVMOMI_IMPORT_ERROR = None
vim = vmodl = SmartConnect = SoapAdapter = VmomiSupport = None


def load_pyvmomi() -> bool:
    """pyVmomi, imported on first use (_lazy_import)."""
    return import_on_first_use(globals(), 'PYVMOMI_IMPORT_ERROR', vim='pyVmomi:vim', vmodl='pyVmomi:vmodl',
                               SmartConnect='pyVim.connect:SmartConnect', SoapAdapter='pyVmomi:SoapAdapter',
                               VmomiSupport='pyVmomi:VmomiSupport')


#: vSphere power states as the engine names them
POWER = {'poweredOn': 'running', 'poweredOff': 'off', 'suspended': 'suspended'}
CAPABILITY_FLAGS = ('snapshotOperationsSupported', 'memorySnapshotsSupported', 'quiescedSnapshotsSupported',
                    'revertToSnapshotSupported')
#: what no snapshot operation changes: read with the lookup, not again after the run's own writes
STATIC_PROPS = ['name'] + ['capability.%s' % flag for flag in CAPABILITY_FLAGS]
#: what another run or this run's own writes change (a revert powers off, a removal leaves delta disks)
RUNTIME_PROPS = ['runtime.powerState', 'runtime.consolidationNeeded', 'guest.toolsRunningStatus']
#: what a lookup, a capability check and a refresh after a write need: cheap, no tree and no file layout
LIGHT_PROPS = STATIC_PROPS + RUNTIME_PROPS
#: the snapshot tree
TREE_PROPS = ['snapshot']
#: the tree again with what its records need of the file layout (memory files, delta disks, file sizes),
#: read in a second call for the VMs that have snapshots only: for 1,000 VMs the whole ``layoutEx`` costs
#: twice the rest of their properties together, and a VM without snapshots needs none of it
LAYOUT_PROPS = ['snapshot', 'layoutEx.snapshot', 'layoutEx.file']
GUEST_PROPS = LIGHT_PROPS + TREE_PROPS
NETWORK_ERRORS = (OSError, http.client.HTTPException, socket.timeout)

_TRUE = ('1', 'true', 'yes', 'on', 'y', 't')
_FALSE = ('0', 'false', 'no', 'off', 'n', 'f')


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidRequestError('%s must be true or false, not %r' % (name, value))


def fault_message(exc: BaseException) -> str:
    """The provider's own words for a vim/vmodl fault (or any exception)."""
    msg = getattr(exc, 'msg', None)
    if not msg:
        for item in getattr(exc, 'faultMessage', None) or []:
            msg = getattr(item, 'message', None)
            if msg:
                break
    if msg:
        return str(msg)
    if vmodl is not None and isinstance(exc, vmodl.MethodFault):
        return exc.__class__.__name__
    return str(exc) or exc.__class__.__name__


def translate(exc: BaseException, doing: str,
              not_found: Callable[..., SavepointError] = SnapshotNotFoundError) -> SavepointError:
    """A pyVmomi fault or network error as the engine's error, vSphere's message kept."""
    load_pyvmomi()
    if isinstance(exc, SavepointError):
        return exc
    message = fault_message(exc)
    fault = type(exc).__name__
    if vim is not None and isinstance(exc, vmodl.MethodFault):
        fault = exc._wsdlName
        details = {'vsphere_fault': fault}
        if isinstance(exc, (vim.fault.InvalidLogin, vim.fault.NotAuthenticated)):
            return AuthenticationError('%s: the vSphere session was refused: %s' % (doing, message), message,
                                       details)
        if isinstance(exc, (vmodl.fault.ManagedObjectNotFound, vim.fault.NotFound)):
            return not_found('%s: %s' % (doing, message), message, details)
        if isinstance(exc, (vmodl.fault.MethodNotFound, vmodl.fault.NotSupported)):
            return UnsupportedError('%s: this vSphere server does not support it: %s' % (doing, message),
                                    message, details)
        if isinstance(exc, vim.fault.ApplicationQuiesceFault):
            return QuiesceUnavailableError('%s: VMware Tools could not quiesce the guest: %s' % (doing, message),
                                           message, details)
        if isinstance(exc, vim.fault.NoPermission):
            return ProviderError('%s: permission denied (%s)' % (doing, message), message, details)
        return ProviderError('%s failed: %s (%s)' % (doing, message, fault), message, details)
    if isinstance(exc, ssl.SSLError):
        return CertificateError('%s: TLS failed: %s' % (doing, message), message)
    if isinstance(exc, NETWORK_ERRORS):
        return ConnectionFailedError('%s: lost the connection to vSphere: %s' % (doing, message or fault),
                                     message or fault)
    return ProviderError('%s failed: %s' % (doing, message), message)

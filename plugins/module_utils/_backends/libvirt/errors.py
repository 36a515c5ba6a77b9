# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt-python, and libvirt's errors as the engine's errors (libvirt's message kept, secrets masked)."""

from __future__ import annotations

import traceback
from typing import List, Optional

from ..._errors import (
    ConnectionFailedError, GuestNotFoundError, ProviderError, QuiesceUnavailableError, SavepointError,
    SnapshotNotFoundError, UnsupportedError,
)
from ..._redact import redact_text

LIBVIRT_IMPORT_ERROR = None
try:
    import libvirt
except ImportError:
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()
    libvirt = None

# libvirt error codes (virErrorNumber) this backend tells apart.
ERR_NO_CONNECT = 5
ERR_NO_DOMAIN = 42
ERR_CONFIG_UNSUPPORTED = 67
ERR_NO_DOMAIN_SNAPSHOT = 72
ERR_ARGUMENT_UNSUPPORTED = 74
ERR_OPERATION_UNSUPPORTED = 84
ERR_AGENT_UNRESPONSIVE = 86
ERR_SYSTEM_ERROR = 38
ERR_RPC_DOMAIN = 7
ERR_NO_DOMAIN_METADATA = 80


def version_text(number: int) -> str:
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


def translate(exc: Exception, doing: str, secrets: Optional[List[str]] = None) -> SavepointError:
    """A libvirt error as the engine's error, with libvirt's message kept (secrets masked)."""
    if libvirt is None or not isinstance(exc, libvirt.libvirtError):
        text = redact_text(str(exc), secrets)
        return ProviderError('%s failed: %s' % (doing, text), provider_message=text)
    code = exc.get_error_code()
    message = redact_text(exc.get_error_message() or str(exc), secrets)
    details = {'libvirt_code': code, 'libvirt_domain': exc.get_error_domain()}
    if code == ERR_NO_DOMAIN:
        return GuestNotFoundError('%s: guest not found' % doing, message, details)
    if code == ERR_NO_DOMAIN_SNAPSHOT:
        return SnapshotNotFoundError('%s: snapshot not found' % doing, message, details)
    if code in (ERR_ARGUMENT_UNSUPPORTED, ERR_AGENT_UNRESPONSIVE):
        return QuiesceUnavailableError('%s: the guest agent cannot quiesce the guest: %s' % (doing, message),
                                       message, details)
    if code in (ERR_CONFIG_UNSUPPORTED, ERR_OPERATION_UNSUPPORTED):
        return UnsupportedError('%s: not supported by libvirt: %s' % (doing, message), message, details)
    if code in (ERR_NO_CONNECT,) or exc.get_error_domain() == ERR_RPC_DOMAIN:
        return ConnectionFailedError('%s: lost or could not open the libvirt connection: %s' % (doing, message),
                                     message, details)
    return ProviderError('%s failed: %s' % (doing, message), message, details)

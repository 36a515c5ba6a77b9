# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One error hierarchy for the engine and every backend.

Backends translate their SDK's exceptions into these; the module layer turns
any of them into one ``fail_json`` with the same keys for every provider.
"""

from __future__ import annotations

from typing import Any, Dict, Optional


class SavepointError(Exception):
    """Base class: something the user should read, nothing half-done hidden."""

    kind = 'error'

    def __init__(self, msg: str, provider_message: Optional[str] = None,
                 details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.provider_message = provider_message
        self.details = dict(details or {})

    def to_result(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {'msg': self.msg, 'error': self.kind}
        if self.provider_message:
            result['provider_message'] = self.provider_message
        if self.details:
            result['error_details'] = self.details
        return result


class InvalidRequestError(SavepointError):
    """The task's options contradict each other; nothing was contacted or changed."""
    kind = 'invalid_request'


class MissingLibraryError(SavepointError):
    kind = 'missing_library'


class ConnectionFailedError(SavepointError):
    kind = 'connection_failed'


class AuthenticationError(ConnectionFailedError):
    kind = 'authentication_failed'


class CertificateError(ConnectionFailedError):
    kind = 'certificate_verify_failed'


class GuestNotFoundError(SavepointError):
    kind = 'guest_not_found'


class AmbiguousGuestError(SavepointError):
    kind = 'guest_ambiguous'


class SnapshotNotFoundError(SavepointError):
    kind = 'snapshot_not_found'


class AmbiguousSnapshotError(SavepointError):
    kind = 'snapshot_ambiguous'


class SnapshotConflictError(SavepointError):
    """A snapshot of that name exists but was taken with other options."""
    kind = 'snapshot_conflict'


class UnsupportedError(SavepointError):
    """The provider (or this version of it) cannot do what was asked."""
    kind = 'unsupported'


class QuiesceUnavailableError(UnsupportedError):
    kind = 'quiesce_unavailable'


class WaitTimeoutError(SavepointError):
    kind = 'timeout'


class ProviderError(SavepointError):
    """The provider refused or failed an operation; its message is kept."""
    kind = 'provider_error'


class PartialFailureError(SavepointError):
    """Some guests of a multi-guest request failed (and what was done about it)."""
    kind = 'partial_failure'

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""openstacksdk and keystoneauth failures as the engine's errors, with no secret in them.

keystoneauth's exception text holds the full request URL (an ``auth_url`` from
clouds.yaml may carry ``user:password@``) and the SDK's ``HttpException`` text
holds the URL and, when the service answered with something that is not JSON,
the response body. None of that is copied: a message is built from the kind of
failure, the HTTP status and a short reason; URLs lose their userinfo, query
and fragment; a reason that looks like a body (long, several lines, markup) is
replaced by the status' standard phrase.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any, List, Optional
from urllib.parse import urlsplit, urlunsplit

from ..._errors import (
    AuthenticationError, CertificateError, ConnectionFailedError, InvalidRequestError, ProviderError,
    SavepointError, SnapshotNotFoundError,
)
from ..._lazy_import import import_on_first_use

OPENSTACK_IMPORT_ERROR: Optional[str] = None
openstack: Any = None
os_exc: Any = None
ksa_exc: Any = None

#: the longest service reason copied into a message; longer text is a body, not a reason
MAX_REASON = 300
_URL_RE = re.compile(r'''[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>()\[\]{},]+''')


def load_openstacksdk() -> bool:
    """openstacksdk and keystoneauth's exceptions, imported on first use (_lazy_import)."""
    return import_on_first_use(globals(), 'OPENSTACK_IMPORT_ERROR', openstack='openstack',
                               os_exc='openstack.exceptions', ksa_exc='keystoneauth1.exceptions')


def scrub_url(url: str) -> str:
    """A URL without userinfo, query and fragment (where tokens and passwords travel)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ''
        if ':' in host:
            host = '[%s]' % host
        netloc = host + (':%d' % parts.port if parts.port is not None else '')
    except ValueError:  # not parseable (e.g. a bad port): keep only the scheme
        return url.split('://', 1)[0] + '://(address withheld)'
    return urlunsplit((parts.scheme, netloc, parts.path, '', ''))


def _scrub_match(match: 're.Match[str]') -> str:
    url = match.group(0)
    bare = url.rstrip('.:;')  # sentence punctuation after a URL is not part of it
    return scrub_url(bare) + url[len(bare):]


def scrub(text: str) -> str:
    """Free text with every URL in it scrubbed."""
    return _URL_RE.sub(_scrub_match, text)


def _chain(exc: Optional[BaseException]) -> List[BaseException]:
    found: List[BaseException] = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _urls(exc: BaseException) -> List[str]:
    """The endpoint(s) a keystoneauth error names, scrubbed."""
    found: List[str] = []
    for item in _chain(exc):
        for match in _URL_RE.findall(str(item)):
            url = scrub_url(match.rstrip('.:;'))
            if url not in found:
                found.append(url)
    return found


def _network_reason(exc: BaseException) -> str:
    text = ' '.join(str(item) for item in _chain(exc)).lower()
    for needle, reason in (('timed out', 'timed out'), ('timeout', 'timed out'),
                           ('refused', 'connection refused'), ('name or service not known', 'unknown host'),
                           ('nodename nor servname', 'unknown host'), ('no route', 'no route to host'),
                           ('reset by peer', 'connection reset'), ('unreachable', 'network unreachable'),
                           ('hostname', 'host name mismatch'),
                           ('certificate verify failed', 'certificate verify failed'),
                           ('self signed', 'self-signed certificate'), ('wrong version number', 'not TLS')):
        if needle in text:
            return reason
    return type(exc).__name__


def _service_reason(exc: BaseException, status: Optional[int]) -> str:
    """The service's own short message (Nova's faultString, Glance's title), never a body."""
    details = getattr(exc, 'details', None)
    response = getattr(exc, 'response', None)
    if response is not None and 'json' not in str(getattr(response, 'headers', {}).get('Content-Type') or '').lower():
        # Not a JSON answer: the SDK's details are the body's text (an HTML error page, a proxy's dump).
        details = None
    if isinstance(details, str):
        details = details.strip()
        if details and len(details) <= MAX_REASON and '\n' not in details and not details.startswith(('<', '{', '[')):
            return scrub(details)
    if status:
        try:
            return HTTPStatus(int(status)).phrase
        except ValueError:
            return 'HTTP %s' % status
    # No HTTP answer (SDK-side errors, config problems): their own text, first line, URLs scrubbed.
    text = str(exc).strip()
    text = scrub(text.splitlines()[0]) if text else type(exc).__name__
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + '...'


def _is_token_request(exc: BaseException) -> bool:
    """A 4xx answer of Keystone to the authentication request itself (POST .../auth/tokens)."""
    if not isinstance(exc, ksa_exc.HttpError):
        return False
    path = urlsplit(str(getattr(exc, 'url', None) or '')).path.rstrip('/')
    return (path.endswith('/auth/tokens') and str(getattr(exc, 'method', '') or '').upper() == 'POST'
            and getattr(exc, 'http_status', None) in (401, 404))


def translate(exc: BaseException, doing: str, not_found: Any = SnapshotNotFoundError) -> SavepointError:
    """An openstacksdk / keystoneauth error as the engine's error; no URL userinfo, query or body in it."""
    load_openstacksdk()
    if isinstance(exc, SavepointError):
        return exc
    chain = _chain(exc)
    if ksa_exc is not None:
        for item in chain:
            where = ' '.join(_urls(item)[:1])
            at = ' %s' % where if where else ''
            if isinstance(item, ksa_exc.SSLError):
                reason = _network_reason(item)
                return CertificateError('%s: TLS with the OpenStack endpoint%s failed: %s' % (doing, at, reason),
                                        reason)
            if isinstance(item, (ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.UnknownConnectionError)):
                reason = _network_reason(item)
                return ConnectionFailedError('%s: cannot reach the OpenStack endpoint%s: %s' % (doing, at, reason),
                                             reason)
            if isinstance(item, ksa_exc.Unauthorized):
                return AuthenticationError('%s: Keystone refused the credentials (HTTP 401): wrong user name, '
                                           'password, project or domain' % doing, 'HTTP 401')
            if _is_token_request(item):
                # Keystone answers a token it cannot read (wrong, expired, revoked, another cloud's) with
                # 404 "Could not recognize Fernet token", not 401: still the credentials, not a missing object.
                status = getattr(item, 'http_status', None)
                return AuthenticationError('%s: Keystone refused the credentials (HTTP %s): wrong, expired or '
                                           'revoked token, or wrong user name, password, project or domain'
                                           % (doing, status), 'HTTP %s' % status)
            if isinstance(item, ksa_exc.EndpointNotFound):
                reason = _service_reason(item, None)
                return ConnectionFailedError('%s: the service catalog has no such endpoint: %s' % (doing, reason),
                                             reason)
            if isinstance(item, ksa_exc.MissingRequiredOptions):
                names = ', '.join(getattr(o, 'dest', str(o)) for o in getattr(item, 'options', []) or [])
                reason = 'missing: %s' % names if names else _service_reason(item, None)
                return InvalidRequestError('%s: incomplete OpenStack auth settings (%s)' % (doing, reason), reason)
    status = getattr(exc, 'status_code', None)
    reason = _service_reason(exc, status)
    details = {'http_status': status} if status else {}
    if os_exc is not None:
        if isinstance(exc, os_exc.ConfigException):
            return ConnectionFailedError('%s: the OpenStack client configuration is unusable: %s' % (doing, reason),
                                         reason)
        if status == 401:
            return AuthenticationError('%s: the OpenStack session was refused (HTTP 401): %s' % (doing, reason),
                                       reason, details)
        if status == 404:
            return not_found('%s: not found: %s' % (doing, reason), reason, details)
        if status == 403:
            return ProviderError('%s: permission denied (HTTP 403): %s' % (doing, reason), reason, details)
        if isinstance(exc, os_exc.EndpointNotFound):
            return ConnectionFailedError('%s: %s' % (doing, reason), reason)
    if status:
        return ProviderError('%s failed (HTTP %s): %s' % (doing, status, reason), reason, details)
    return ProviderError('%s failed: %s' % (doing, reason), reason)

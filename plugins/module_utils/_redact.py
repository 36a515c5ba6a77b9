# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep secrets out of every message and result.

Pure functions (no Ansible, no SDK), used in two places: at the source in a
backend (a libvirt URI is masked before it goes into a message) and as the
last step of every module result and failure (a safety net for SDK text that
a backend copied into ``provider_message``).

What is masked:
- the userinfo of any URI/URL (``qemu+tcp://user:pass@host`` ->
  ``qemu+tcp://***@host``), whole: a lone userinfo may be a token;
- values of obvious secret keys in ``key=value``, ``key: value`` and JSON/
  repr text (password, token, secret, ...) and auth headers;
- every known secret value (the no_log option values, the password part of a
  URI given as an option), wherever it appears.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, Iterable, List, Optional
from urllib.parse import unquote

MASK = '********'
USERINFO_MASK = '***'

# scheme://userinfo@ -- the userinfo runs to the last '@' of the authority, so an
# unencoded '@' in a password does not leave its tail behind.
_URI_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s?#'\"<>]*)@")

SECRET_KEYS = ('password', 'passwd', 'passphrase', 'secret', 'token', 'api_key', 'apikey', 'access_key',
               'secret_key', 'private_key', 'credential', 'auth_token', 'sessionid', 'session_id', 'cookie',
               'vmware_soap_session')
# key (alone or as the end of a longer name such as application_credential_secret),
# a separator (= or :, optionally quoted as in JSON or a Python repr), then the value.
_KEY_VALUE = re.compile(
    r"(?P<key>\b[\w\-]*(?:%s))(?P<sep>['\"]?\s*[:=]\s*['\"]?)(?P<value>[^'\"\s&,;}\]\)]+)"
    % '|'.join(re.escape(k) for k in SECRET_KEYS), re.IGNORECASE)
_AUTH_HEADER = re.compile(
    r"(?P<key>\b(?:X-Auth-Token|X-Subject-Token|X-Auth-Key|Authorization|Proxy-Authorization|Set-Cookie|Cookie)"
    r"['\"]?\s*[:=]\s*['\"]?)(?:(?:Bearer|Basic|Digest|Negotiate)\s+)?[^'\"\s,;}]+", re.IGNORECASE)
# Words after "password:" that are prose, not a value ("password: missing").
_PROSE = frozenset(('is', 'must', 'missing', 'required', 'not', 'none', 'null', 'empty', 'given', 'set',
                    'unset', 'no', 'of', 'for', 'and', 'or', 'the', 'a', 'an', 'true', 'false', MASK))
#: shorter known values are not masked by substring: masking "a" or "1" everywhere would garble every message.
MIN_SECRET_LENGTH = 3
# Every match of the three patterns above contains one of these (case-insensitive): a text without any needs
# none of them run. A 1,000-guest result holds some 50,000 strings, almost all of them names and dates.
_MAYBE_SECRET = re.compile('|'.join(['://', 'auth', 'cookie'] + [re.escape(k) for k in SECRET_KEYS]), re.IGNORECASE)


def mask_uri(text: str) -> str:
    """``text`` with the userinfo of every URI in it masked."""
    return _URI_USERINFO.sub(lambda m: '%s%s@' % (m.group('scheme'), USERINFO_MASK), text)


def uri_secrets(text: str) -> List[str]:
    """The secret parts of the URIs in ``text``: each userinfo holding a password, and that password
    (raw and percent-decoded), so that a caller can mask them wherever they are copied."""
    found: List[str] = []
    for match in _URI_USERINFO.finditer(text):
        userinfo = match.group('userinfo')
        if ':' not in userinfo:
            continue  # a user name alone is not a secret (a token would be one: the text mask covers it)
        password = userinfo.split(':', 1)[1]
        for value in (userinfo, password, unquote(password)):
            if value and value not in found:
                found.append(value)
    return found


def _mask_key_value(match: 're.Match[str]') -> str:
    if match.group('value').lower() in _PROSE:
        return match.group(0)
    return '%s%s%s' % (match.group('key'), match.group('sep'), MASK)


def _longest_first(secrets: Optional[Iterable[str]]) -> List[str]:
    """The known secrets worth masking, longest first (so a secret that contains another goes whole)."""
    return sorted({s for s in (secrets or ()) if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH},
                  key=len, reverse=True)


def redact_text(text: str, secrets: Optional[Iterable[str]] = None) -> str:
    """``text`` with URI userinfo, secret key values, auth headers and the known ``secrets`` masked."""
    return _redact_text(text, _longest_first(secrets))


def _redact_text(text: str, ordered: List[str]) -> str:
    if not text:
        return text
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    if not _MAYBE_SECRET.search(text):
        return text
    text = mask_uri(text)
    text = _AUTH_HEADER.sub(lambda m: m.group('key') + MASK, text)
    return _KEY_VALUE.sub(_mask_key_value, text)


_SECRET_KEY = re.compile(r'(?:^|.*_)(?:%s)$' % '|'.join(re.escape(k) for k in SECRET_KEYS), re.DOTALL)


@functools.lru_cache(maxsize=4096, typed=True)   # a result's few dozen keys, each met once per guest
def _secret_key(key: Any) -> bool:
    """A dict key that names a secret: one of SECRET_KEYS, alone or after an underscore (``os_password``)."""
    return _SECRET_KEY.match(str(key).lower()) is not None


def redact(value: Any, secrets: Optional[Iterable[str]] = None) -> Any:
    """A copy of a result structure (dicts, lists, strings) with every secret masked.

    A dict entry whose key names a secret (``password``, ``auth_token``, ...) is
    masked whole when it holds a string; other strings are redacted by text.
    """
    return _redact(value, _longest_first(secrets), {})


def _redact(value: Any, secrets: List[str], done: Dict[str, str]) -> Any:
    """``done``: the plain texts of this structure already redacted (a result of 1,000 guests repeats a
    few hundred texts 50,000 times: names of states, providers, actions). Only plain ``str``: an equal
    text of a subclass (Ansible's tagged strings) keeps its own object and tags."""
    if type(value) is str:  # pylint: disable=unidiomatic-typecheck  # see above
        found = done.get(value)
        if found is None:
            found = done[value] = _redact_text(value, secrets)
        return found
    if isinstance(value, str):
        return _redact_text(value, secrets)
    if isinstance(value, dict):
        return {key: (MASK if _secret_key(key) and isinstance(item, str) and item else _redact(item, secrets, done))
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(item, secrets, done) for item in value)
    return value


def secrets_in(value: Any) -> List[str]:
    """The URI secrets found in the strings of an option structure (for a module's no_log values)."""
    found: List[str] = []
    if isinstance(value, str):
        found.extend(uri_secrets(value))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(secrets_in(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.extend(secrets_in(item))
    return found

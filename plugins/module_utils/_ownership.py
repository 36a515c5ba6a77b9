# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ownership and expiry markers.

Providers without a key/value store on snapshots (libvirt, VMware) keep the
marker as the last line of the snapshot's description, after the user's own
text; it is split off again when reading, so users see their description
unchanged. Retention only ever selects snapshots that carry a marker whose
owner matches, so hand-made snapshots are never touched.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Optional, Tuple

from ._errors import InvalidRequestError
from ._model import Marker, normalise_description, parse_duration, utcnow

MARKER_PREFIX = '[savepoint.virt] '
DEFAULT_OWNER = 'savepoint.virt'


def make_marker(owner: Optional[str], created_by: str, expires_in: Any = None,
                now: Optional[datetime.datetime] = None) -> Marker:
    expires_at = None
    if expires_in is not None:
        try:
            expires_at = (now or utcnow()) + parse_duration(expires_in, 'expires_in')
        except OverflowError:  # within MAX_DURATION, but past year 9999 for a skewed clock
            raise InvalidRequestError('expires_in: %r ends after the year 9999' % (expires_in,))
    return Marker(owner=owner or DEFAULT_OWNER, created_by=created_by, expires_at=expires_at)


def encode_description(description: str, marker: Optional[Marker]) -> str:
    text = normalise_description(description)
    if marker is None:
        return text
    line = MARKER_PREFIX + json.dumps(marker.to_dict(), sort_keys=True, separators=(',', ':'))
    return '%s\n%s' % (text, line) if text else line


def decode_description(text: Optional[str]) -> Tuple[str, Optional[Marker]]:
    """Split a stored description into the user's text and the marker (if any)."""
    description, marker, _problem = read_description(text)
    return description, marker


def read_description(text: Optional[str]) -> Tuple[str, Optional[Marker], Optional[str]]:
    """(the user's text, the marker or None, why a marker line could not be read or None).

    A marker line that cannot be read (hand-edited JSON, a non-string expiry) leaves the
    snapshot not owned -- retention never touches it -- and the reason is reported.
    """
    if not text:
        return '', None, None
    lines = text.rstrip('\n').split('\n')
    last = lines[-1]
    if not last.startswith(MARKER_PREFIX):
        return normalise_description(text), None, None
    try:
        marker = Marker.from_dict(json.loads(last[len(MARKER_PREFIX):]))
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError too
        return normalise_description(text), None, 'unreadable ownership marker (%s)' % exc
    return normalise_description('\n'.join(lines[:-1])), marker, None

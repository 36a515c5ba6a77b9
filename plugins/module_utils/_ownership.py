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

from ._model import Marker, parse_duration, utcnow

MARKER_PREFIX = '[savepoint.virt] '
DEFAULT_OWNER = 'savepoint.virt'


def make_marker(owner: Optional[str], created_by: str, expires_in: Any = None,
                now: Optional[datetime.datetime] = None) -> Marker:
    expires_at = None
    if expires_in not in (None, ''):
        expires_at = (now or utcnow()) + parse_duration(expires_in)
    return Marker(owner=owner or DEFAULT_OWNER, created_by=created_by, expires_at=expires_at)


def encode_description(description: str, marker: Optional[Marker]) -> str:
    text = (description or '').rstrip('\n')
    if marker is None:
        return text
    line = MARKER_PREFIX + json.dumps(marker.to_dict(), sort_keys=True, separators=(',', ':'))
    return '%s\n%s' % (text, line) if text else line


def decode_description(text: Optional[str]) -> Tuple[str, Optional[Marker]]:
    """Split a stored description into the user's text and the marker (if any)."""
    if not text:
        return '', None
    lines = text.rstrip('\n').split('\n')
    last = lines[-1]
    if not last.startswith(MARKER_PREFIX):
        return text, None
    try:
        marker = Marker.from_dict(json.loads(last[len(MARKER_PREFIX):]))
    except ValueError:
        return text, None
    if marker is None:
        return text, None
    return '\n'.join(lines[:-1]), marker

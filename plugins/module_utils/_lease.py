# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lease as text: who holds a guest and until when (the protocols that store it are in _locking.py).

JSON where the store holds it (libvirt's metadata element, Nova's 255-character metadata values), else
one compact line for a store that holds a short name only (a VMware folder name, 80 characters).
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from typing import Optional

from ._model import from_iso, to_iso

COMPACT_PREFIX = 'spl1 '
_UNSAFE = str.maketrans({'/': '_', '\\': '_', '%': '_', '\n': ' ', '\r': ' ', '\t': ' '})


@dataclass
class Lease:
    run: str            # unique id of the holding run
    who: str            # what a human needs to find that run
    acquired_at: str
    expires_at: str

    def encode(self, limit: Optional[int] = None) -> str:
        """The lease as text: JSON where it fits the store's limit (``lease_max_chars``; Nova's metadata
        values hold 255), else one compact line of at most ``limit`` characters (a VMware folder name):
        ``spl1 <expires epoch> <acquired epoch> <run> <who>``, who cut to fit. Raises ValueError when even
        the compact line without ``who`` does not fit."""
        text = json.dumps(asdict(self), sort_keys=True)
        if not limit or len(text) <= limit:
            return text
        head = '%s%d %d %s ' % (COMPACT_PREFIX, from_iso(self.expires_at).timestamp(),
                                from_iso(self.acquired_at).timestamp(), self.run)
        if len(head.rstrip()) > limit:
            raise ValueError('the lease text needs %d characters, the store holds at most %d'
                             % (len(head.rstrip()), limit))
        return (head + self.who.translate(_UNSAFE))[:limit].rstrip()

    @classmethod
    def decode(cls, text: Optional[str]) -> Optional['Lease']:
        """The lease in ``text``; None when there is none. Raises ValueError for an unreadable one."""
        if text is None or not text.strip():
            return None
        if text.startswith(COMPACT_PREFIX):
            parts = text[len(COMPACT_PREFIX):].split(' ', 3)
            if len(parts) < 3:
                raise ValueError('a compact lease needs expiry, start and run')

            def stamp(value: str) -> Optional[str]:
                return to_iso(datetime.datetime.fromtimestamp(int(value), datetime.timezone.utc))
            return cls(run=parts[2], who=parts[3] if len(parts) > 3 else '', acquired_at=stamp(parts[1]),
                       expires_at=stamp(parts[0]))
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError('not a JSON object')
        lease = cls(**{k: str(data[k]) for k in ('run', 'who', 'acquired_at', 'expires_at')})
        from_iso(lease.expires_at)  # must parse
        return lease

    def expired(self, now: datetime.datetime) -> bool:
        return from_iso(self.expires_at) <= now

    def describe(self) -> str:
        return 'run %s (%s, since %s, lease expires %s)' % (self.run, self.who, self.acquired_at, self.expires_at)


def run_identity(what: str = '') -> tuple:
    """(run id, who) of this process."""
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a minimal container
        user = str(os.getuid())
    # Unique on its own (host and pid are in ``who``), and short enough for a compact lease.
    run = uuid.uuid4().hex[:12]
    job = os.environ.get('JOB_ID') or os.environ.get('AWX_JOB_ID')
    who = '%s@%s pid %d%s%s' % (user, host, os.getpid(), ' job %s' % job if job else '',
                                ' %s' % what if what else '')
    return run, who

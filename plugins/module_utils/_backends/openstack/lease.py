# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-guest lease of _locking.py, kept in one key of the server's metadata.

Nova server metadata is a consistent register (one database row per key, read
back with the server), which is all the write/settle/read-back algorithm of
_locking.py needs. Constraints of that store, and what is done about them:

- A value holds at most 255 characters: ``lease_max_chars`` tells the lease
  keeper, which shortens the human part of the text to fit; a text that still
  does not fit is refused before anything is written.
- Nova refuses metadata writes on a locked server (HTTP 409) for a non-admin:
  that fails at once, naming the lock. It refuses them on a server in ERROR
  (or another state but ACTIVE, SHUTOFF, PAUSED, SUSPENDED) too: the run then
  goes on without that server's lease, with a warning (so the snapshots of a
  broken server can still be deleted; Nova refuses createImage there anyway). (A server in a task -- a snapshot
  upload, a rebuild -- still takes metadata writes: Nova checks no task state
  there, so a run that did not wait for its operation still releases.)
- A user whom the cloud's policy does not allow to write server metadata
  (``os_compute_api:server-metadata:*``) gets a clear error naming the rule:
  the same user could not record the current snapshot either (``savepoint_current``),
  so there is no unlocked fallback.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Tuple

from ..._errors import GuestNotFoundError, InvalidRequestError, ProviderError, SavepointError
from ..._locking import LeaseUnavailableError
from ..._model import Guest
from .errors import translate
from .images import MAX_VALUE, PREFIX

#: the server metadata key holding the lease of the run acting on the server
M_LEASE = PREFIX + 'lease'


def _status(exc: BaseException) -> Optional[int]:
    return getattr(exc, 'status_code', None) or getattr(exc, 'http_status', None)


class LeaseMixin:
    supports_leases = True
    lease_max_chars = MAX_VALUE
    conn: Any

    def read_lease(self, guest: Guest) -> Optional[str]:
        server = self._server(guest.id)  # type: ignore[attr-defined]
        return (getattr(server, 'metadata', None) or {}).get(M_LEASE) or None

    def recent_lease(self, guest: Guest, max_age: float) -> Tuple[bool, Optional[str]]:
        """(True, the lease text or None) from a read of the server this backend started less than
        ``max_age`` seconds ago and after its last lease write (the last poll of a create reads the server
        anyway); (False, None) when there is no such read, and the caller reads the lease itself."""
        seen = (self._server_reads or {}).get(guest.id)  # type: ignore[attr-defined]
        if seen is None:
            return False, None
        started, writes, metadata = seen
        if writes != self._lease_writes or time.monotonic() - started >= max_age:  # type: ignore[attr-defined]
            return False, None
        return True, metadata.get(M_LEASE) or None

    def write_lease(self, guest: Guest, text: Optional[str]) -> None:
        # Before the call: a read that started before this write (or before one that failed half-way)
        # no longer tells what the lease is.
        self._lease_writes += 1  # type: ignore[attr-defined]
        doing = "%s the lease of server '%s' (metadata key %s)" % ('removing' if text is None else 'writing',
                                                                   guest.name, M_LEASE)
        if text is not None and len(text) > MAX_VALUE:
            raise InvalidRequestError('%s: the lease is %d characters long, Nova metadata values hold at most %d'
                                      % (doing, len(text), MAX_VALUE))
        try:
            if text is None:
                self.conn.compute.delete_server_metadata(guest.id, [M_LEASE])
            else:
                self.conn.compute.set_server_metadata(guest.id, **{M_LEASE: text})
        except SavepointError:
            raise
        except Exception as exc:  # every sdk failure becomes an engine error, never a traceback
            status = _status(exc)
            if text is None and status == 404:
                return  # no lease (or no server) left: nothing to remove
            if status == 403:
                raise ProviderError(
                    "%s: the cloud's policy does not allow this user to write the server's metadata "
                    "(HTTP 403; rule os_compute_api:server-metadata:create/update/delete). savepoint.virt "
                    "keeps its one-run-at-a-time lease and the current snapshot there; nothing was changed"
                    % doing, 'HTTP 403', {'http_status': 403})
            if status == 409:
                server = self._server(guest.id)  # type: ignore[attr-defined]
                if getattr(server, 'is_locked', False):
                    raise ProviderError("%s: the server is locked (openstack server unlock), and Nova refuses "
                                        "metadata writes on a locked server; nothing was changed" % doing,
                                        'HTTP 409', {'http_status': 409})
                if server.status not in ('ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED'):
                    # e.g. ERROR after a nova-compute crash under a rebuild: Nova takes no metadata writes
                    raise LeaseUnavailableError("the server is %s, and Nova takes no metadata writes on a server "
                                                "in that state" % server.status, 'HTTP 409',
                                                {'http_status': 409, 'status': server.status})
            raise translate(exc, doing, GuestNotFoundError)

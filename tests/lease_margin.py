"""A short lease margin for in-process engine runs in tests that leave a lease on purpose.

A run whose release hung on a frozen or dead provider leaves its lease; it expires ``timeout + margin`` after
its last renewal, and the next run waits for that and takes it over with a warning. The module's margin
(LEASE_MARGIN_SECONDS, 60 s) covers clock skew between controllers and a run that may still be acting; a test
on one machine, whose faulted run has returned and whose provider has finished, checks that the re-run waits
and takes over, not how long the margin is. ``use_short_margin`` keeps that path and saves the minute.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.savepoint.virt.plugins.module_utils import _locking
from ansible_collections.savepoint.virt.plugins.module_utils._locking import LeaseKeeper

SHORT_MARGIN_SECONDS = 5.0


class ShortMarginLeases(LeaseKeeper):
    """The engine's lease keeper with SHORT_MARGIN_SECONDS unless a margin is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault('margin', SHORT_MARGIN_SECONDS)
        super().__init__(*args, **kwargs)


def use_short_margin(monkeypatch: Any) -> float:
    """Every SnapshotEngine run of this test writes leases with the short margin; returns it. (The engine makes
    its keepers with _locking.keeper_for, which, like the per-member keepers of a set across providers, makes
    each one as _locking.LeaseKeeper.)"""
    monkeypatch.setattr(_locking, 'LeaseKeeper', ShortMarginLeases)
    return SHORT_MARGIN_SECONDS

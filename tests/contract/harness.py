"""What the provider contract suite needs from each provider: one small class.

A provider adds ``harness_<provider>.py`` next to this file with a subclass
of ProviderHarness in ``HARNESSES``; the suite then runs against it too.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional

from ansible_collections.savepoint.virt.plugins.module_utils._backend import SnapshotBackend
from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotRecord, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy


class ProviderHarness:
    #: id shown in test names
    name = ''
    #: pytest mark name selecting this provider's real service (None: in-process, always runs)
    mark: Optional[str] = None
    #: seconds the engine may wait for one request
    timeout = 120.0

    def start(self) -> None:
        """Bring the service up (once per session); raise if it cannot."""

    def stop(self) -> None:
        """Tear the service down."""

    def backend(self) -> SnapshotBackend:
        """A new, not yet connected backend for this provider."""
        raise NotImplementedError

    def new_guest(self) -> GuestRef:
        """A running guest with no snapshots, removed again by cleanup()."""
        raise NotImplementedError

    def power_state(self, ref: GuestRef) -> str:
        """'running' | 'paused' | 'off', read from the provider without the backend under test."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """Remove the guests new_guest() made."""

    # -- helpers shared by every provider's tests -----------------------------------------
    def run(self, request: Request, check_mode: bool = False, diff: bool = False) -> Dict[str, Any]:
        with self.backend() as backend:
            return SnapshotEngine(backend, check_mode=check_mode, diff=diff,
                                  wait_policy=WaitPolicy(timeout=self.timeout)).run(request)

    def snapshots(self, ref: GuestRef) -> List[SnapshotRecord]:
        with self.backend() as backend:
            return backend.list_snapshots(backend.find_guest(ref))

    def create(self, ref: GuestRef, name: str, expires_in: Optional[str] = None, owned: bool = True,
               **spec: Any) -> Dict[str, Any]:
        marker = make_marker(None, 'contract-suite', expires_in) if owned else None
        return self.run(Request(state='present', guests=[ref], snapshot_name=name,
                                spec=SnapshotSpec(name=name, marker=marker, **spec)))


@contextlib.contextmanager
def all_started(made: Dict[str, ProviderHarness]) -> Iterator[Dict[str, ProviderHarness]]:
    """The harnesses of a set across providers, each started (one that cannot start raises: the test fails);
    the ones started are stopped again at the end."""
    started: List[ProviderHarness] = []
    try:
        for harness in made.values():
            harness.start()
            started.append(harness)
        yield made
    finally:
        for harness in started:
            harness.stop()


def cleanup_all(made: Dict[str, ProviderHarness]) -> None:
    """cleanup() of every harness: each one is tried, then what failed is reported."""
    errors = []
    for harness in made.values():
        try:
            harness.cleanup()
        except Exception as exc:  # clean every provider, then report
            errors.append('%s: %s' % (harness.name, exc))
    assert not errors, errors

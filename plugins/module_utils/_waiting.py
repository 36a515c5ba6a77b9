# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One waiting policy for every provider: a deadline that always ends,
jittered exponential backoff between polls, and a progress line now and then."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from ._errors import SavepointError, WaitTimeoutError

ProgressCallback = Callable[[str], None]


@dataclass
class Operation:
    """A write started on the provider. Synchronous providers return it already done."""

    action: str                       # create | revert | delete
    guest: Any                        # _model.Guest
    snapshot_name: str
    handle: Any = None                # the provider's task/job object
    id: Optional[str] = None          # what a user can poll with (task id, image id)
    done: bool = False
    error: Optional[SavepointError] = None
    result: Any = None
    started: float = field(default_factory=time.monotonic)
    finished: Optional[float] = None
    # A second step that must run after this one succeeds (e.g. power the guest
    # on after a revert); it may return another Operation to wait for.
    follow_up: Optional[Callable[[], Optional['Operation']]] = field(default=None, repr=False)
    blocked_seconds: Optional[float] = None
    percent: Optional[int] = None     # where the provider reports it (vSphere task progress)
    next_step: Optional['Operation'] = field(default=None, repr=False)

    def finish(self, result: Any = None, error: Optional[SavepointError] = None) -> None:
        self.done = True
        self.finished = time.monotonic()
        if result is not None:
            self.result = result
        self.error = error

    def chain(self) -> List['Operation']:
        ops, op = [], self
        while op is not None:
            ops.append(op)
            op = op.next_step
        return ops

    @property
    def complete(self) -> bool:
        """Done, follow-ups included (or stopped by an error)."""
        for op in self.chain():
            if op.error is not None:
                return True
            if not op.done or op.follow_up is not None:
                return False
        return True

    @property
    def final_error(self) -> Optional[SavepointError]:
        for op in self.chain():
            if op.error is not None:
                return op.error
        return None


@dataclass
class WaitPolicy:
    timeout: float = 600.0
    initial_delay: float = 0.2
    max_delay: float = 10.0
    progress_every: float = 15.0
    #: never poll later than this fraction of the time waited so far, nor (early on) than min_interval:
    #: a wait ends at most max(10 %, 250 ms) after the provider finished, while a long wait still polls
    #: less often than a fixed interval would (benchmarks/wait_latency.py)
    late_fraction: float = 0.1
    min_interval: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def delays(self):
        """Jittered exponential backoff: full jitter between half and the whole step."""
        step = self.initial_delay
        while True:
            yield step * random.uniform(0.5, 1.0)
            step = min(self.max_delay, step * 2)


def wait_until(poll: Callable[[], bool], policy: WaitPolicy, what: str,
               progress: Optional[ProgressCallback] = None) -> None:
    """Call ``poll`` until it returns True; raise WaitTimeoutError at the deadline."""
    start = policy.clock()
    deadline = start + policy.timeout
    last_report = start
    for delay in policy.delays():
        began = policy.clock()
        if poll():
            return
        now = policy.clock()
        delay = min(delay, max(policy.min_interval, policy.late_fraction * (began - start)))
        # The delay runs from the start of this poll, so a slow API call does not push the next poll
        # later (on a loaded cloud a poll takes 50-100 ms, a third of the 250 ms early on).
        delay -= now - began
        if now >= deadline:
            raise WaitTimeoutError('timed out after %ds waiting for %s' % (policy.timeout, what),
                                   details={'timeout': policy.timeout})
        if progress is not None and now - last_report >= policy.progress_every:
            progress('still waiting for %s (%ds of %ds)' % (what, now - start, policy.timeout))
            last_report = now
        policy.sleep(max(0.0, min(delay, deadline - now)))


def pending(operations: List[Operation]) -> List[Operation]:
    return [op for op in operations if not op.done]

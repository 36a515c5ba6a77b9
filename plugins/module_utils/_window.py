# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A sliding window over the guests of a bulk task: at most ``limit`` worked on at once, and the next
guest started as soon as one finishes (not when a whole group has), so one slow guest holds back
nobody but itself.

A guest may have several steps (the removals of ``state=pruned`` or ``remove_all``): they run one
after the other and the guest keeps its place in the window between them, so a guest never has two
writes at once and the bound still counts guests. Everything runs under one deadline: a step whose
turn comes after it is not started, and says so. The waiting itself stays the backend's
(``SnapshotBackend.wait`` with ``until_first``: vSphere's property collector, OpenStack's polls,
libvirt's threads); this module only decides what to start when. Pure logic: no SDK, no Ansible.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ._waiting import Operation


@dataclass
class _Running:
    item: Any
    step: int
    op: Operation


def slide(items: Sequence[Any], limit: int, deadline: float, clock: Callable[[], float],
          start: Callable[[Any, int], Optional[Operation]],
          wait: Callable[[List[Operation], bool], None],
          finished: Callable[[Any, int, Operation], bool],
          not_started: Callable[[Any, int], None],
          steps: Callable[[Any], int] = lambda _item: 1,
          wait_for_last: bool = True,
          new_round: Callable[[int], None] = lambda _step: None,
          start_many: Optional[Callable[[List[Tuple[Any, int]]], List[Optional[Operation]]]] = None) -> None:
    """Work on ``items`` in their order, at most ``limit`` at once.

    ``start(item, step)`` starts one step and returns its operation, or None when nothing was started
    (it recorded why, or there was nothing to do): the item is then done. ``wait(operations,
    until_first)`` waits for the running operations until the first is complete (or all, when nothing
    is left to start) and marks what did not finish by the deadline. ``finished(item, step, op)`` takes
    a complete step's outcome and says whether the item goes on with its next step. ``not_started``
    is told of every step the deadline came before. ``new_round(step)`` is called before the first
    guest starts step ``step`` (the engine renews its leases there, as often as before the window).
    ``wait_for_last`` false (``wait: false``): return once nothing is left to start, leaving at most
    ``limit`` operations running. ``start_many([(item, step), ...])``, when given, starts every step
    the window has room for at once (one operation or None each, in order), so that a provider can take
    the requests together; the deadline and ``new_round`` are checked for each step before any starts.
    """
    queue = deque(item for item in items if steps(item) > 0)
    running: List[_Running] = []
    rounds = [-1]   # the highest step started so far

    def due(item: Any, step: int) -> bool:
        if clock() >= deadline:
            not_started(item, step)
            return False
        if step > rounds[0]:
            rounds[0] = step
            new_round(step)
        return True

    def launch(jobs: List[Tuple[Any, int]]) -> None:
        if start_many is None:   # one by one, the deadline looked at before each
            ops = [start(item, step) if due(item, step) else None for item, step in jobs]
        else:
            jobs = [(item, step) for item, step in jobs if due(item, step)]
            ops = start_many(jobs) if jobs else []
        for (item, step), op in zip(jobs, ops):
            if op is not None:
                running.append(_Running(item, step, op))

    while queue or running:
        launch([(queue.popleft(), 0) for _free in range(min(len(queue), limit - len(running)))])
        if not running:
            continue
        more = bool(queue) or any(job.step + 1 < steps(job.item) for job in running)
        if not more and not wait_for_last:
            return
        wait([job.op for job in running], more)
        done = [job for job in running if job.op.complete]
        running = [job for job in running if not job.op.complete]
        # the guests keep their places: their next removals
        launch([(job.item, job.step + 1) for job in done
                if finished(job.item, job.step, job.op) and job.step + 1 < steps(job.item)])

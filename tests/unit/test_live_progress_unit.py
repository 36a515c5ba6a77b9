"""The controller path's pure part: the progress line."""

from __future__ import annotations

from ansible_collections.savepoint.virt.plugins.module_utils._model import Guest
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation
from ansible_collections.savepoint.virt.plugins.plugin_utils.live_progress import Tracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_names_operations_percent_elapsed_and_deadline():
    clock = Clock()
    tracker = Tracker(600, clock=clock)
    assert tracker.line() == ('savepoint.virt: reading guests and snapshots; elapsed 0s, deadline in 600s '
                              '(timeout 600s)')
    web = Guest(id='vm-1', name='web01')
    op = Operation(action='delete', guest=web, snapshot_name='pre')
    op.percent = 40
    tracker.operations.append(op)
    tracker.starting = "create 'x' on db01"
    clock.now += 25
    assert tracker.line() == ("savepoint.virt: delete 'pre' on web01 40%, starting create 'x' on db01 "
                              "[0 of 1 operations done]; elapsed 25s, deadline in 575s (timeout 600s)")
    assert tracker.line(hide_names=True) == 'savepoint.virt: working, elapsed 25s, deadline in 575s (timeout 600s)'
    op.finish()
    tracker.starting = None
    assert tracker.line().startswith('savepoint.virt: reading back results [1 of 1 operations done]')
    clock.now += 1000
    assert 'deadline in 0s' in tracker.line()

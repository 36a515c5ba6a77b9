"""The controller path's pure parts: progress lines and the AnsibleModule stand-in."""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._model import Guest
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation
from ansible_collections.savepoint.virt.plugins.plugin_utils.live_progress import ControllerModule, Tracker, _Exit


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


def test_controller_module_removes_no_log_values_and_ends_the_run():
    module = ControllerModule({'password': 'S3cret!', 'name': 'web'}, {'S3cret!'}, False, False, print)
    module.warn('careful')
    with pytest.raises(_Exit):
        module.fail_json(msg='login with S3cret! refused', changed=False, error=None)
    result = module.result
    assert result['failed'] is True and result['changed'] is False and result['error'] is None
    assert 'S3cret!' not in repr(result) and result['warnings'] == ['careful']
    assert result['invocation']['module_args']['name'] == 'web'

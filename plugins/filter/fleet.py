# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the fleet roles and playbooks (prune, report): thin wrappers of
module_utils/_fleet.py and module_utils/_report.py, where the logic and its
tests live."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.savepoint.virt.plugins.module_utils import _fleet, _report
from ansible_collections.savepoint.virt.plugins.module_utils._errors import SavepointError
from ansible_collections.savepoint.virt.plugins.module_utils._options import parallel_variable_error


def fleet_batches(hostvars: Mapping[str, Any], hosts: Sequence[str]) -> List[Dict[str, Any]]:
    try:
        return _fleet.batches(hostvars, list(hosts))
    except SavepointError as exc:
        raise AnsibleFilterError('savepoint.virt: %s' % exc.msg)


def snapshot_report_rows(batches: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    return _report.rows(batches)


def snapshot_report_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return _report.as_json(rows)


def snapshot_report_html(rows: Sequence[Mapping[str, Any]]) -> str:
    return _report.page(rows)


def snapshot_report_table(rows: Sequence[Mapping[str, Any]]) -> str:
    return _report.table(rows)


def parallel_error(value: Any, name: str) -> str:
    """What is wrong with a role's or playbook's ``parallel`` variable ('' when nothing is)."""
    return parallel_variable_error(value, name) or ''


def prune_summary(result: Mapping[str, Any], check_mode: bool = False) -> List[str]:
    return _report.prune_lines(result, check_mode)


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        # a filter is named as its function
        return {function.__name__: function for function in (
            fleet_batches, snapshot_report_rows, snapshot_report_json, snapshot_report_html, snapshot_report_table,
            prune_summary, parallel_error,
        )}

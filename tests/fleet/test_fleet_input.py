"""Bad input to the fleet playbooks stops them before any provider is contacted, naming what is wrong.

The hosts point at a libvirt URI that cannot exist: had a module run, it would fail differently."""

from __future__ import annotations

import json

import pytest

from .helpers import run_fqcn, write_inventory

pytestmark = pytest.mark.playbook

NOWHERE = {'uri': 'qemu+unix:///system?socket=/nonexistent/savepoint-fleet.sock'}


def host(**extra):
    hv = {'savepoint_provider': 'libvirt', 'savepoint_connection': NOWHERE}
    hv.update(extra)
    return hv


@pytest.mark.parametrize('playbook, hosts, extra, words', [
    ('prune', {'a': host()}, {'prune_older_than': ''}, 'prune_older_than a duration such as 3d (not empty)'),
    ('prune', {'a': host()}, {'prune_expired': False}, 'at least one rule set'),
    ('prune', {'a': host()}, {'prune_owner': ''}, 'prune_owner must be a non-empty string'),
    ('prune', {'a': host(), 'b': {'savepoint_connection': NOWHERE}}, {}, 'host b: savepoint_provider is not set'),
    ('report', {'a': host(savepoint_guest='')}, {}, 'host a: savepoint_guest is empty'),
    ('report', {'a': host(savepoint_provider='xen')}, {}, "savepoint_provider 'xen' is not one of"),
    ('report', {'a': host()}, {'report_dest': ''}, 'report_dest must be a directory path, not empty'),
])
def test_bad_input_fails_before_any_module_runs(tmp_path, playbook, hosts, extra, words):
    run = run_fqcn(playbook, write_inventory(tmp_path, hosts), dict(extra, target_hosts='fleet'))
    assert run.rc != 0
    failed = [t for t in run.tasks() if t['result'].get('failed')]
    assert failed and words in json.dumps(failed[0]['result']), json.dumps(failed)[-2000:]
    modules = [t for t in run.tasks() if t['result'].get('action', '').startswith('savepoint.virt.')
               or 'provider' in t['result']]
    assert modules == [], 'a module ran: %s' % modules

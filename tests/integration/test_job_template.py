"""The patch_rollout playbook (guard role) run the way AWX/AAP runs a job template: ansible-runner,
a private data directory, extra vars, the playbook named by FQCN, artifacts read back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ansible_runner
import libvirt
import pytest
import yaml

from scripts.ansible_run import COLLECTIONS, collection_env
from services.libvirt import TinyGuest, ensure_daemon

pytestmark = pytest.mark.qemu


def job(tmp_path, guest, change_fails):
    pdd = tmp_path / 'pdd'
    (pdd / 'inventory').mkdir(parents=True)
    (pdd / 'env').mkdir()
    (pdd / 'project').mkdir()
    # The host is the guest; the API calls go to the controller (localhost).
    (pdd / 'inventory' / 'hosts').write_text(
        '[virt]\n%s ansible_connection=local ansible_python_interpreter=%s savepoint_provider=libvirt\n'
        '[virt:vars]\nsavepoint_connection={"uri": "qemu:///system"}\n' % (guest.name, sys.executable))
    (pdd / 'env' / 'envvars').write_text(yaml.safe_dump({'ANSIBLE_COLLECTIONS_PATH': str(COLLECTIONS)}))
    (pdd / 'project' / 'change.yml').write_text(yaml.safe_dump([
        {'name': 'Write over the disk', 'ansible.builtin.command':
            "virsh -c qemu:///system qemu-monitor-command %s --hmp "
            "'qemu-io -d virtio-disk0/virtio-backend \"write -P 0xcd 0 4096\"'" % guest.name,
         'changed_when': True},
        {'name': 'The change fails' if change_fails else 'The change succeeds',
         'ansible.builtin.command': '/bin/false' if change_fails else '/bin/true', 'changed_when': False},
    ]))
    (pdd / 'project' / 'site.yml').write_text(yaml.safe_dump([
        {'name': 'Job template', 'ansible.builtin.import_playbook': 'savepoint.virt.patch_rollout'}]))
    collection_env()  # makes sure the collection link exists
    extravars = {
        'target_hosts': 'virt',
        'guard_change_tasks': str(pdd / 'project' / 'change.yml'),
        'tower_job_id': 4242,  # AWX/AAP passes the job id: it names the restore point
    }
    run = ansible_runner.run(private_data_dir=str(pdd), playbook='site.yml', extravars=extravars, quiet=True)
    stats = next(e for e in run.events if e['event'] == 'playbook_on_stats')
    return run, stats['event_data'].get('artifact_data', {})


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    # ansible-runner starts ansible-playbook from PATH, as AWX's execution environment does.
    monkeypatch.setenv('PATH', '%s%s%s' % (Path(sys.executable).parent, os.pathsep, os.environ.get('PATH', '')))


@pytest.fixture
def guest():
    ensure_daemon(sys.executable)
    conn = libvirt.open('qemu:///system')
    made = TinyGuest(conn).create()
    made.write_pattern(0xab)
    yield made
    made.destroy()
    conn.close()


def test_failed_change_is_reverted_and_reported(tmp_path, guest):
    run, artifacts = job(tmp_path, guest, change_fails=True)
    assert run.status == 'failed' and run.rc != 0
    report = artifacts['savepoint_guard'][guest.name]
    assert report['outcome'] == 'reverted' and report['snapshot'] == 'savepoint-guard-job4242'
    assert 'The change fails' in report['error']
    assert guest.has_pattern(0xab) and not guest.has_pattern(0xcd)
    # the restore point is removed after the revert (guard_keep_for would keep it)
    assert guest.dom.listAllSnapshots(0) == []


def test_successful_change_keeps_its_result_and_drops_the_restore_point(tmp_path, guest):
    run, artifacts = job(tmp_path, guest, change_fails=False)
    assert run.status == 'successful' and run.rc == 0
    assert artifacts['savepoint_guard'][guest.name]['outcome'] == 'succeeded'
    assert guest.has_pattern(0xcd)
    assert guest.dom.listAllSnapshots(0) == []

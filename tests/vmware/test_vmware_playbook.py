"""vmware_snapshot, vmware_snapshot_info and snapshot (provider: vmware) through ansible-playbook against vcsim."""

from __future__ import annotations

import json
import subprocess

import pytest

from scripts.ansible_run import VENV_BIN, collection_env, run_playbook
from services.vcsim import VcsimServer

pytestmark = pytest.mark.vmware

SECRET = 'Pw-4711-never-printed'

PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/savepoint.virt.snapshot:
      hostname: "{{ vc_host }}"
      port: "{{ vc_port }}"
      username: "{{ vc_user }}"
      password: "{{ vc_password }}"
      validate_certs: false
      honor_capability_flags: false
  tasks:
    - name: take
      savepoint.virt.vmware_snapshot:
        name: "{{ vm }}"
        folder: DC0/vm
        snapshot_name: pre-change
        description: from a playbook
        expires_in: 1d
    - name: take again
      savepoint.virt.vmware_snapshot:
        name: "{{ vm }}"
        folder: DC0/vm
        snapshot_name: pre-change
        description: from a playbook
    - name: second
      savepoint.virt.snapshot:
        provider: vmware
        name: "{{ vm }}"
        snapshot_name: second
    - name: revert
      savepoint.virt.snapshot:
        provider: vmware
        name: "{{ vm }}"
        snapshot_name: pre-change
        state: reverted
        power_state: 'on'
    - name: info
      savepoint.virt.vmware_snapshot_info:
        name: "{{ vm }}"
    - name: neutral info
      savepoint.virt.snapshot_info:
        provider: vmware
        moid: "{{ info.guests[0].guest.id if info is defined else omit }}"
        name: "{{ omit if info is defined else vm }}"
      register: info
    - name: remove
      savepoint.virt.vmware_snapshot:
        name: "{{ vm }}"
        snapshot_name: pre-change
        state: absent
        remove_children: true
    - name: remove again
      savepoint.virt.vmware_snapshot:
        name: "{{ vm }}"
        snapshot_name: pre-change
        state: absent
'''

CHECK_PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - name: take in check mode
      savepoint.virt.vmware_snapshot:
        hostname: "{{ vc_host }}"
        port: "{{ vc_port }}"
        username: "{{ vc_user }}"
        password: "{{ vc_password }}"
        validate_certs: false
        honor_capability_flags: false
        name: "{{ vm }}"
        snapshot_name: checked
    - name: neutral in check mode
      savepoint.virt.snapshot:
        provider: vmware
        hostname: "{{ vc_host }}"
        port: "{{ vc_port }}"
        username: "{{ vc_user }}"
        password: "{{ vc_password }}"
        validate_certs: false
        honor_capability_flags: false
        name: "{{ vm }}"
        snapshot_name: checked
'''

ENV_PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - name: from the environment
      savepoint.virt.vmware_snapshot:
        honor_capability_flags: false
        name: "{{ vm }}"
        snapshot_name: env-snap
'''


def write(tmp_path, text, name='play.yml'):
    path = tmp_path / name
    path.write_text(text)
    return path


def action(result):
    """The module's own action ('created', ...): the JSON callback overwrites a result's top-level 'action'."""
    return result["results"][0]["action"]


def vars_for(vcsim, vm, password='pass', user='user'):
    return {'vc_host': vcsim.host, 'vc_port': vcsim.port, 'vc_user': user, 'vc_password': password, 'vm': vm}


def test_lifecycle_through_ansible_playbook(vcsim, inventory, tmp_path):
    vm = inventory.new_vm()
    run = run_playbook(write(tmp_path, PLAYBOOK), vars_for(vcsim, vm.name), diff=True)
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    take = run.result('take')
    assert take['changed'] is True and action(take) == 'created'
    assert take['snapshot']['owner'] == 'savepoint.virt' and take['snapshot']['description'] == 'from a playbook'
    assert 'diff' in take
    again = run.result('take again')
    assert again['changed'] is False and action(again) == 'exists'
    assert run.result('second')['provider'] == 'vmware'
    revert = run.result('revert')
    assert revert['changed'] is True and action(revert) == 'reverted'
    assert vm.runtime.powerState == 'poweredOn'
    info = run.result('info')
    assert info['changed'] is False and [s['name'] for s in info['snapshots']] == ['pre-change', 'second']
    assert run.result('neutral info')['snapshots'][0]['name'] == 'pre-change'
    remove = run.result('remove')
    assert remove['changed'] is True and action(remove) == 'deleted'
    assert run.result('remove again')['changed'] is False
    assert vm.snapshot is None


def test_check_mode_changes_nothing(vcsim, inventory, tmp_path):
    vm = inventory.new_vm()
    run = run_playbook(write(tmp_path, CHECK_PLAYBOOK), vars_for(vcsim, vm.name), check=True, diff=True)
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    for task in ('take in check mode', 'neutral in check mode'):
        result = run.result(task)
        assert result['changed'] is True and action(result) == 'would create'
    assert vm.snapshot is None


def test_environment_variables_are_used(vcsim, inventory, tmp_path):
    vm = inventory.new_vm()
    env = {'VMWARE_HOST': vcsim.host, 'VMWARE_PORT': str(vcsim.port), 'VMWARE_USER': 'user',
           'VMWARE_PASSWORD': 'pass', 'VMWARE_VALIDATE_CERTS': 'false'}
    run = run_playbook(write(tmp_path, ENV_PLAYBOOK), {'vm': vm.name}, env=env)
    assert run.rc == 0, json.dumps(run.data)[-3000:]
    assert action(run.result('from the environment')) == 'created'


def test_certificate_failure_through_ansible(vcsim, inventory, tmp_path):
    vm = inventory.new_vm()
    env = {'VMWARE_HOST': vcsim.host, 'VMWARE_PORT': str(vcsim.port), 'VMWARE_USER': 'user',
           'VMWARE_PASSWORD': 'pass'}
    run = run_playbook(write(tmp_path, ENV_PLAYBOOK), {'vm': vm.name}, env=env)
    result = run.result('from the environment')
    assert run.rc != 0 and result['failed'] is True
    assert result['error'] == 'certificate_verify_failed' and 'validate_certs: false' in result['msg']
    assert vm.snapshot is None


@pytest.fixture(scope='module')
def locked_vcsim():
    with VcsimServer(vms_per_pool=1, extra_args=['-username', 'admin', '-password', SECRET]) as server:
        yield server


def ansible_vvv(playbook, extra_vars, check=False):
    """ansible-playbook -vvv with the default (human) output, as a user would read it."""
    cmd = [str(VENV_BIN / 'ansible-playbook'), '-vvv', str(playbook), '-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    return subprocess.run(cmd, env=collection_env(), capture_output=True, text=True, timeout=300, check=False)


def test_wrong_password_fails_clearly_and_no_password_in_any_output(locked_vcsim, tmp_path):
    wrong = SECRET[::-1]
    playbook = write(tmp_path, CHECK_PLAYBOOK.replace(
        '        snapshot_name: checked\n    - name: neutral', '        snapshot_name: checked\n      ignore_errors: true\n'
        '    - name: neutral'))
    run = run_playbook(playbook, vars_for(locked_vcsim, 'DC0_H0_VM0', password=wrong, user='admin'))
    for task in ('take in check mode', 'neutral in check mode'):
        result = run.result(task)
        assert result['failed'] is True and result['error'] == 'authentication_failed'
        assert "refused the login of user 'admin'" in result['msg']
    assert run.rc != 0
    assert wrong not in json.dumps(run.data) + run.stderr
    proc = ansible_vvv(playbook, vars_for(locked_vcsim, 'DC0_H0_VM0', password=wrong, user='admin'))
    assert proc.returncode != 0 and "refused the login of user 'admin'" in proc.stdout
    assert 'ESTABLISH LOCAL CONNECTION' in proc.stdout + proc.stderr   # really verbose
    assert wrong not in proc.stdout + proc.stderr and SECRET not in proc.stdout + proc.stderr
    # the right password works, and is not printed either
    proc = ansible_vvv(playbook, vars_for(locked_vcsim, 'DC0_H0_VM0', password=SECRET, user='admin'), check=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert SECRET not in proc.stdout + proc.stderr

"""The snapshot modules' action plugin: on the controller the engine runs in Ansible's own
process and prints progress while it works; elsewhere (here: savepoint_live_progress=false,
the same as a remote host) the module runs as always. Both paths: same results, check mode,
diff, no_log, argument validation; the vCenter password printed by neither."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from scripts.ansible_run import REPO, VENV_BIN, collection_env
from services.vcsim import VcsimServer

from contract.harness_vmware import VcsimInventory

pytestmark = pytest.mark.vmware

SECRET = 'Live-Pw-0815-never-printed'
DELAY_MS = 12000   # vcsim holds each CreateSnapshot_Task call this long: longer than a progress period

PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/savepoint.virt.snapshot:
      hostname: "{{ vc_host }}"
      port: "{{ vc_port }}"
      username: user
      password: "{{ vc_password }}"
      validate_certs: false
      honor_capability_flags: false
  tasks:
    - name: take
      savepoint.virt.vmware_snapshot: {name: "{{ vm }}", snapshot_name: pre, description: d, expires_in: 1d}
      delegate_to: localhost
      register: take
    - name: again
      savepoint.virt.snapshot: {provider: vmware, name: "{{ vm }}", snapshot_name: pre, description: d}
      register: again
    - name: checked
      savepoint.virt.vmware_snapshot: {name: "{{ vm }}", snapshot_name: other}
      check_mode: true
      diff: true
      register: checked
    - name: secret task
      savepoint.virt.vmware_snapshot: {name: "{{ vm }}", snapshot_name: covert-snap}
      no_log: true
      register: hidden
    - name: bad option
      savepoint.virt.vmware_snapshot: {name: "{{ vm }}", snapshot_name: x, bogus: 1}
      register: bad
      ignore_errors: true
    - name: missing guest
      savepoint.virt.vmware_snapshot: {name: no-such-vm, snapshot_name: x}
      register: missing
      ignore_errors: true
    - name: info
      savepoint.virt.snapshot_info: {provider: vmware, name: "{{ vm }}"}
      register: info
    - name: revert
      savepoint.virt.vmware_snapshot: {name: "{{ vm }}", snapshot_name: pre, state: reverted}
      register: revert
    - name: remove
      savepoint.virt.snapshot: {provider: vmware, name: "{{ vm }}", snapshot_name: pre, state: absent,
                                remove_children: true}
      register: remove
    - name: keep the results
      ansible.builtin.copy:
        content: "{{ {'take': take, 'again': again, 'checked': checked, 'hidden': hidden, 'bad': bad,
                      'missing': missing, 'revert': revert, 'remove': remove, 'info': info} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
'''


@pytest.fixture(scope='module')
def slow_vcsim():
    server = VcsimServer(vms_per_pool=2, extra_args=['-method-delay', 'CreateSnapshot_Task:%d' % DELAY_MS])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run(tmp_path: Path, server: VcsimServer, vm: str, live: bool):
    play = tmp_path / 'play.yml'
    play.write_text(PLAYBOOK)
    out = tmp_path / ('results-%s.json' % live)
    extra = {'vc_host': server.host, 'vc_port': server.port, 'vc_password': SECRET, 'vm': vm,
             'out': str(out), 'savepoint_live_progress': live}
    proc = subprocess.run([str(VENV_BIN / 'ansible-playbook'), str(play), '-v', '-e', json.dumps(extra)],
                          env=collection_env(), capture_output=True, text=True, cwd=str(REPO), timeout=1800,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc, json.loads(out.read_text())


def shape(value, vm):
    """A result with what differs between two runs on two VMs (ids, times, names) blanked out."""
    if isinstance(value, dict):
        return {k: shape(v, vm) for k, v in value.items()
                if k not in ('seconds', 'guest_blocked_seconds', 'created_at', 'expires_at', 'id', 'parent_id',
                             'invocation', 'progress', 'size_bytes')}
    if isinstance(value, list):
        return [shape(v, vm) for v in value]
    if isinstance(value, str):
        value = value.replace(vm, 'VM')
        value = re.sub(r'\d{4}-\d\d-\d\dT[\d:]+Z', 'TIME', value)
        return re.sub(r'\d+(\.\d+)?s\b', 'Ns', re.sub(r'(snapshot|task|vm)-\d+', r'\1-N', value))
    return value


def test_both_paths_give_the_same_results_and_only_the_controller_path_talks(slow_vcsim, tmp_path):
    inventory = VcsimInventory(slow_vcsim)
    try:
        vm_live, vm_module = inventory.new_vm().name, inventory.new_vm().name
        live_proc, live = run(tmp_path, slow_vcsim, vm_live, True)
        module_proc, module = run(tmp_path, slow_vcsim, vm_module, False)
    finally:
        inventory.destroy_made()
        inventory.close()

    for name in ('take', 'again', 'checked', 'info', 'revert', 'remove', 'missing'):
        assert shape(live[name], vm_live) == shape(module[name], vm_module), name
    assert live['take']['action'] == 'created' and live['again']['action'] == 'exists'
    assert live['checked']['changed'] is True and live['checked']['action'] == 'would create'
    assert 'diff' in live['checked'] and 'other' in json.dumps(live['checked']['diff'])
    assert [s['name'] for s in live['info']['snapshots']] == ['pre', 'covert-snap']
    assert live['missing']['failed'] and 'no-such-vm' in live['missing']['msg']
    for result in (live, module):
        assert result['bad']['failed'] and 'bogus' in result['bad']['msg']
        assert result['hidden']['action'] == 'created'   # registered as usual; only the output is censored
        assert SECRET not in json.dumps(result)

    # progress while vcsim holds the create: guest, operation, elapsed and deadline
    lines = [line for line in live_proc.stdout.splitlines() if 'savepoint.virt: ' in line and 'elapsed' in line]
    assert any(re.search(r"starting create 'pre' on %s; elapsed \d+s, deadline in \d+s \(timeout 600s\)"
                         % re.escape(vm_live), line) for line in lines), live_proc.stdout[-3000:]
    assert any('savepoint.virt: working, elapsed' in line for line in lines), 'no_log task: progress without names'
    assert not any('covert-snap' in line for line in lines)
    assert 'elapsed' not in module_proc.stdout      # the module path prints nothing while it runs
    for proc in (live_proc, module_proc):
        assert SECRET not in proc.stdout + proc.stderr
        task_output = proc.stdout.split('TASK [secret task]', 1)[1].split('TASK [', 1)[0]
        assert "'no_log: true'" in task_output and 'covert-snap' not in task_output, task_output

"""savepoint.virt.patch_rollout run the way AWX/AAP runs a job template.

ansible-runner with a private data directory laid out like AWX's: inventory/, env/extravars
(the survey and AWX's own awx_job_id), env/envvars (what the credentials inject, plus
ANSIBLE_COLLECTIONS_PATH of the collection BUILT and INSTALLED from its tarball, as a project's
collections/requirements.yml or the EE provides it), env/ssh_key (the machine credential: runner
loads it into an ssh-agent), env/passwords; the project holds the one-line wrapper playbook of
docs/awx/project/. Process isolation (bubblewrap/podman) is not available here: jobs run on the
host, as with AWX's process isolation off.

One host of each job is forced to fail: the job's events, the set_stats artifact
(savepoint_guard), the revert on the provider, and that no secret appears under artifacts/.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ansible_runner
import libvirt
import pytest

from integration import awx_job
from services.linux_guest import BOOT_TIMEOUT, start_guests

JOB_ID = 4242
BOOT = max(BOOT_TIMEOUT, 600.0)
SNAPSHOT = 'savepoint-guard-job%d' % JOB_ID  # the guard role's name for an AWX job's restore points
WRAPPER = (awx_job.REPO / 'docs' / 'awx' / 'project' / 'patch_rollout.yml').read_text()
CHANGE = [
    {'name': 'Apply the patch', 'ansible.builtin.raw': 'echo patched > /data/patched && sync', 'changed_when': True},
    {'name': 'The patch breaks this host', 'ansible.builtin.fail': {'msg': 'forced failure of the patch'},
     'when': 'savepoint_test_break | default(false) | bool'},
]
API_CHANGE = [
    {'name': 'Apply the patch', 'ansible.builtin.debug': {'msg': 'patched'}},
    {'name': 'The patch breaks this host', 'ansible.builtin.fail': {'msg': 'forced failure of the patch'},
     'when': 'savepoint_test_break | default(false) | bool'},
]


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    return awx_job.build_and_install_collection(tmp_path_factory.mktemp('collection'))


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    # ansible-runner starts ansible-playbook from PATH, as AWX's execution environment does.
    monkeypatch.setenv('PATH', '%s%s%s' % (Path(sys.executable).parent, os.pathsep, os.environ.get('PATH', '')))
    # nothing of this checkout may leak into the job: only what the private data dir says
    for name in ('ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_PYTHON_INTERPRETER', 'OS_CLOUD', 'OS_CLIENT_CONFIG_FILE',
                 'LIBVIRT_DEFAULT_URI', 'VMWARE_HOST', 'VMWARE_USER', 'VMWARE_PASSWORD'):
        monkeypatch.delenv(name, raising=False)


def run_job(pdd: Path):
    return ansible_runner.run(private_data_dir=str(pdd), playbook='patch_rollout.yml', ident='job%d' % JOB_ID,
                              quiet=True)


def controller() -> dict:
    return {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}


def inventory(hosts: dict, group_vars: dict) -> str:
    return awx_job.yaml.safe_dump({'all': {
        'hosts': {'localhost': controller()},
        'children': {'guests': {'hosts': hosts, 'vars': group_vars}}}})


def extravars(change_file: str) -> dict:
    return {'awx_job_id': JOB_ID, 'tower_job_id': JOB_ID, 'target_hosts': 'guests', 'rollout_serial': 2,
            'guard_change_tasks': change_file}


def check_job(run, pdd: Path, good: str, bad: str, secrets: list) -> dict:
    assert run.status == 'failed' and run.rc != 0, run.stdout.read() if hasattr(run.stdout, 'read') else run.status
    events = list(run.events)
    kinds = {e['event'] for e in events}
    assert {'playbook_on_start', 'playbook_on_play_start', 'playbook_on_task_start', 'runner_on_ok',
            'runner_on_failed', 'playbook_on_stats'} <= kinds
    failed = [(e['event_data'].get('host'), e['event_data'].get('task')) for e in events
              if e['event'] == 'runner_on_failed' and not e['event_data'].get('ignore_errors')]
    assert (bad, 'The patch breaks this host') in failed and all(entry[0] == bad for entry in failed), failed
    reverted = [e['event_data'].get('host') for e in events if e['event'] == 'runner_on_ok'
                and e['event_data'].get('task', '').endswith('Revert to the restore point')]
    assert reverted == [bad]
    stats = awx_job.stats_artifacts(run)['savepoint_guard']
    assert stats[good]['outcome'] == 'succeeded' and stats[bad]['outcome'] == 'reverted', stats
    assert stats[good]['snapshot'] == stats[bad]['snapshot'] == SNAPSHOT
    assert 'forced failure of the patch' in stats[bad]['error']
    # the artifacts AWX keeps (job events, stdout, the env it recorded) hold no secret
    assert (pdd / 'artifacts').is_dir()
    assert awx_job.secrets_in_artifacts(pdd, secrets) == []
    return stats


@pytest.mark.qemu
def test_libvirt_job_reverts_the_failed_guest_only(tmp_path, installed):
    # boot deadline: emulated guests on a busy 2-core machine (LINUX_GUEST_BOOT_TIMEOUT raises it further)
    with start_guests(2, timeout=BOOT, prefix='sp-awx', with_python=True) as guests:
        good, bad = guests
        key = Path(good.key_file).read_text()
        env = awx_job.inject_custom(awx_job.load_type('savepoint_libvirt'), {'uri': 'qemu:///system'},
                                    tmp_path / 'pdd')[0]
        hosts = {}
        for label, guest, breaks in (('web-good', good, False), ('web-bad', bad, True)):
            hostvars = guest.inventory_vars()
            # the machine credential comes through runner's ssh-agent: no key file, no IdentitiesOnly
            hostvars.pop('ansible_ssh_private_key_file')
            hostvars['ansible_ssh_common_args'] = hostvars['ansible_ssh_common_args'].replace('-o IdentitiesOnly=yes', '')
            hostvars.update({'savepoint_guest': guest.name, 'savepoint_test_break': breaks})
            hosts[label] = hostvars
        pdd = awx_job.private_data_dir(
            tmp_path, inventory(hosts, {'savepoint_provider': 'libvirt'}),
            {'patch_rollout.yml': WRAPPER, 'changes/patch.yml': CHANGE},
            extravars(str(tmp_path / 'pdd' / 'project' / 'changes' / 'patch.yml')),
            # SSH connect timeout for emulated guests on a busy host (a job template's env setting)
            dict(env, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_TIMEOUT='60', ANSIBLE_SSH_RETRIES='3'))
        (pdd / 'env' / 'ssh_key').write_text(key)

        run = run_job(pdd)
        check_job(run, pdd, 'web-good', 'web-bad', [key.strip().splitlines()[1]])
        # the failed guest is back to its restore point, the other keeps its change; no restore point left
        assert good.ssh('cat /data/patched').stdout == 'patched\n'
        bad.wait_ssh()
        assert bad.ssh('test -e /data/patched', check=False).returncode != 0
        conn = libvirt.open('qemu:///system')
        try:
            for guest in guests:
                assert conn.lookupByName(guest.name).listAllSnapshots(0) == []
        finally:
            conn.close()


@pytest.mark.vmware
def test_vmware_job_with_the_builtin_vcenter_credential(tmp_path, installed):
    from contract.harness_vmware import VcsimInventory, shared_vcsim
    server = shared_vcsim()
    vc = VcsimInventory(server)
    try:
        vms = [vc.new_vm('awx-good-%d' % JOB_ID), vc.new_vm('awx-bad-%d' % JOB_ID)]
        password = 'vc-Secret-%s' % os.urandom(4).hex()
        env = awx_job.inject_vmware(server.host, 'awx-user', password, validate_certs=False)
        hosts = {'vm-good': {'savepoint_guest': vms[0].name, **controller()},
                 'vm-bad': {'savepoint_guest': vms[1].name, 'savepoint_test_break': True, **controller()}}
        # AWX's VMware credential has no port: a vCenter elsewhere than 443 is a connection option
        group = {'savepoint_provider': 'vmware',
                 'savepoint_connection': {'port': server.port, 'honor_capability_flags': False}}
        pdd = awx_job.private_data_dir(
            tmp_path, inventory(hosts, group), {'patch_rollout.yml': WRAPPER, 'changes/patch.yml': API_CHANGE},
            extravars(str(tmp_path / 'pdd' / 'project' / 'changes' / 'patch.yml')),
            dict(env, ANSIBLE_COLLECTIONS_PATH=str(installed)))
        run = run_job(pdd)
        check_job(run, pdd, 'vm-good', 'vm-bad', [password])
        for vm in vms:
            assert vm.snapshot is None or not vm.snapshot.rootSnapshotList
    finally:
        vc.destroy_made()
        vc.close()


@pytest.mark.openstack
def test_openstack_job_with_the_builtin_openstack_credential(tmp_path, installed, monkeypatch):
    from contract.harness_openstack import StackServers, shared_stack
    stack = shared_stack()
    # shared_stack() exports the test stack's config the first time it is called in a session (maybe
    # here, maybe in an earlier test); the job gets only AWX's
    monkeypatch.delenv('OS_CLIENT_CONFIG_FILE', raising=False)
    auth = awx_job.yaml.safe_load(stack.clouds_yaml.read_text())['clouds']['stack-demo']['auth']
    servers = StackServers(stack)
    try:
        made = [servers.boot(), servers.boot()]
        # AWX's OpenStack credential: host, username, password, project, domain, region, verify_ssl
        env = awx_job.inject_openstack(tmp_path / 'pdd', auth['auth_url'], auth['username'], auth['password'],
                                       auth['project_name'], project_domain_name=auth['project_domain_name'],
                                       domain=auth['user_domain_name'], region='RegionOne')
        hosts = {'os-good': {'savepoint_guest': made[0].name, **controller()},
                 'os-bad': {'savepoint_guest': made[1].name, 'savepoint_test_break': True, **controller()}}
        pdd = awx_job.private_data_dir(
            tmp_path, inventory(hosts, {'savepoint_provider': 'openstack'}),
            {'patch_rollout.yml': WRAPPER, 'changes/patch.yml': API_CHANGE},
            extravars(str(tmp_path / 'pdd' / 'project' / 'changes' / 'patch.yml')),
            dict(env, ANSIBLE_COLLECTIONS_PATH=str(installed)))
        run = run_job(pdd)
        check_job(run, pdd, 'os-good', 'os-bad', [auth['password']])
        for server in made:
            assert stack.server_images(servers.conn, server) == []  # both restore points removed
            assert servers.get(server.id).status == 'ACTIVE'
    finally:
        servers.cleanup()
        servers.conn.close()

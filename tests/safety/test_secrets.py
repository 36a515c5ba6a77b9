"""Secrets suite (issue 9): known secrets of every provider, given every way a user gives them, grepped
for in ansible-playbook -vvv output, the json callback's output and ansible-runner artifacts.

One table (secrets_table.py), one runner. libvirt and OpenStack cases use loopback ports nothing
listens on (the failing paths: unreachable host with userinfo in the URI); the VMware cases also
run against the session's vcsim (a live login with the password; a missing guest). The cases
against the shared OpenStack stack (wrong password / token) are in test_secrets_openstack.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ansible_runner
import pytest
import yaml

from scripts.ansible_run import COLLECTIONS, collection_env
from safety.runs import Run
from safety.secrets_table import (
    PASSWORD, SECRETS, URI_PASSWORD, URI_USER, Case, free_port, libvirt_cases, openstack_cases, vmware_cases,
)

OUTPUTS = ('vvv', 'json')
#: secrets checks made by this module (reported in the README); counted as they run
CHECKS = {'count': 0}


def assert_clean(text: str, case: Case, where: str) -> None:
    assert text.strip(), '%s: %s printed nothing' % (case.id, where)
    for secret in SECRETS:
        CHECKS['count'] += 1
        assert secret not in text, '%s: secret %r found in %s:\n%s' % (
            case.id, secret, where, _around(text, secret))
    assert case.visible in text, '%s: %r not in %s (did the case run at all?)' % (case.id, case.visible, where)
    assert 'Traceback (most recent call last)' not in text, '%s: traceback in %s' % (case.id, where)


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 300):at + 300]


def run_case(case: Case, tmp_path: Path, output: str) -> Run:
    env = dict(case.env)
    if case.files is not None:
        env.update(case.files(tmp_path))
    args = dict(case.args, provider=case.provider)
    callback = 'ansible.builtin.default' if output == 'vvv' else 'ansible.builtin.json'
    run = Run(args, env=env, verbose=True, callback=callback).wait(600)
    assert run.rc == (2 if case.fails else 0), '%s: rc %s\n%s' % (case.id, run.rc, run.output[-3000:])
    return run


OFFLINE = libvirt_cases() + vmware_cases() + openstack_cases()
#: each case runs with its provider's suite (make test-fast stays fast); none needs the service itself
MARKS = {'libvirt': pytest.mark.qemu, 'vmware': pytest.mark.vmware, 'openstack': pytest.mark.openstack}
OFFLINE_PARAMS = [pytest.param(c, id=c.id, marks=MARKS[c.provider]) for c in OFFLINE]


@pytest.mark.parametrize('output', OUTPUTS)
@pytest.mark.parametrize('case', OFFLINE_PARAMS)
def test_no_secret_in_output(case, output, tmp_path):
    run = run_case(case, tmp_path, output)
    assert_clean(run.output, case, output)
    if output == 'json':
        result = run.result()
        assert result.get('msg'), case.id
        if case.fails:
            assert result.get('error'), '%s: failure without an error kind: %s' % (case.id, result)


@pytest.fixture(scope='module')
def vcsim():
    from contract.harness_vmware import shared_vcsim
    return shared_vcsim()


@pytest.mark.vmware
@pytest.mark.parametrize('output', OUTPUTS)
@pytest.mark.parametrize('index', range(2))
def test_no_secret_in_output_vcsim(vcsim, index, output, tmp_path):
    case = [c for c in vmware_cases(vcsim) if c.needs == 'vcsim'][index]
    run = run_case(case, tmp_path, output)
    assert_clean(run.output, case, '%s (%s)' % (output, case.id))


# -- the role, run as AWX runs a job template (ansible-runner, artifacts read back) ---------------
def runner_job(tmp_path: Path, provider: str, guest: str, connection: dict, env: dict):
    """The guard role as an AWX job: the connection (with its secret) injected as extra vars."""
    pdd = tmp_path / 'pdd'
    (pdd / 'inventory').mkdir(parents=True)
    (pdd / 'env').mkdir()
    (pdd / 'project').mkdir()
    (pdd / 'inventory' / 'hosts').write_text(
        '[virt]\ntarget ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    envvars = {'ANSIBLE_COLLECTIONS_PATH': str(COLLECTIONS)}
    envvars.update(env)
    (pdd / 'env' / 'envvars').write_text(yaml.safe_dump(envvars))
    (pdd / 'project' / 'change.yml').write_text(yaml.safe_dump([
        {'name': 'The change fails', 'ansible.builtin.command': '/bin/false', 'changed_when': False}]))
    (pdd / 'project' / 'site.yml').write_text(yaml.safe_dump([
        {'name': 'Job template', 'hosts': 'virt', 'gather_facts': False,
         'roles': [{'role': 'savepoint.virt.guard'}]}]))
    collection_env()
    extravars = {'savepoint_provider': provider, 'savepoint_guest': guest, 'savepoint_connection': connection,
                 'guard_change_tasks': str(pdd / 'project' / 'change.yml'), 'guard_wait_for_connection': False}
    run = ansible_runner.run(private_data_dir=str(pdd), playbook='site.yml', extravars=extravars, quiet=True,
                             verbosity=3)
    artifacts = Path(run.config.artifact_dir)
    text = []
    for path in sorted(artifacts.rglob('*')):
        if path.is_file():
            text.append(path.read_text(errors='replace'))
    return run, '\n'.join(text)


@pytest.fixture
def venv_on_path(monkeypatch):
    monkeypatch.setenv('PATH', '%s%s%s' % (Path(sys.executable).parent, os.pathsep, os.environ.get('PATH', '')))


@pytest.mark.qemu
def test_role_libvirt_uri_userinfo_in_runner_artifacts(tmp_path, venv_on_path):
    uri = 'qemu+tcp://%s:%s@127.0.0.1:%d/system' % (URI_USER, URI_PASSWORD, free_port())
    case = Case('role-libvirt', 'libvirt', {})
    run, text = runner_job(tmp_path, 'libvirt', 'sp-no-such-guest', {'uri': uri}, {})
    assert run.rc != 0
    assert_clean(text, case, 'runner artifacts')
    assert 'cannot connect to libvirt' in text


@pytest.mark.vmware
def test_role_vmware_password_in_runner_artifacts(tmp_path, vcsim, venv_on_path):
    case = Case('role-vmware', 'vmware', {}, visible='DC0_H0_VM1')
    connection = {'hostname': vcsim.host, 'port': vcsim.port, 'username': 'u', 'password': PASSWORD,
                  'validate_certs': False}
    run, text = runner_job(tmp_path, 'vmware', 'DC0_H0_VM1', connection, {})
    assert run.rc != 0  # the change fails: the role reverts and fails the job
    assert_clean(text, case, 'runner artifacts')
    assert 'reverted' in text


@pytest.mark.openstack
def test_role_openstack_clouds_yaml_in_runner_artifacts(tmp_path, venv_on_path):
    case = [c for c in openstack_cases() if c.id == 'openstack-clouds-yaml'][0]
    env = case.files(tmp_path)
    run, text = runner_job(tmp_path, 'openstack', 'g', {'cloud': 'sp-secret'}, env)
    assert run.rc != 0
    assert_clean(text, case, 'runner artifacts')

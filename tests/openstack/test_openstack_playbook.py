"""openstack_snapshot, openstack_snapshot_info and snapshot (provider: openstack) through
ansible-playbook, as users run them, against the local OpenStack services: check mode first,
then the real lifecycle, and a wrong password that must never show up in the output."""

from __future__ import annotations

import json

import pytest

from scripts.ansible_run import run_playbook

pytestmark = pytest.mark.openstack

SECRET = 'Pw-0815-never-printed'

PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/savepoint.virt.snapshot:
      cloud: stack-demo
  tasks:
    - name: take
      savepoint.virt.openstack_snapshot:
        name: "{{ server }}"
        snapshot_name: pre-change
        description: from a playbook
        expires_in: 1d
    - name: take again
      savepoint.virt.openstack_snapshot:
        name: "{{ server }}"
        snapshot_name: pre-change
        description: from a playbook
    - name: revert
      savepoint.virt.snapshot:
        provider: openstack
        server_id: "{{ server_id }}"
        snapshot_name: pre-change
        state: reverted
        power_state: 'off'
    - name: info
      savepoint.virt.openstack_snapshot_info:
        name: "{{ server }}"
    - name: neutral info
      savepoint.virt.snapshot_info:
        provider: openstack
        server_id: "{{ server_id }}"
    - name: wrong password
      savepoint.virt.openstack_snapshot:
        auth:
          auth_url: http://127.0.0.1:5000/v3
          username: demo
          password: "{{ secret }}"
          project_name: demo
          user_domain_name: Default
          project_domain_name: Default
        cloud: "{{ omit }}"
        name: "{{ server }}"
        snapshot_name: never
      ignore_errors: true
    - name: remove
      savepoint.virt.openstack_snapshot:
        name: "{{ server }}"
        snapshot_name: pre-change
        state: absent
'''

CHECK_PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - name: take in check mode
      savepoint.virt.openstack_snapshot:
        cloud: stack-demo
        name: "{{ server }}"
        snapshot_name: pre-change
'''


def test_playbook_lifecycle_and_check_mode(tmp_path, stack, servers, sdk):
    server = servers.boot()
    extra = {'server': server.name, 'server_id': server.id, 'secret': SECRET}
    env = stack.environ()
    check_book = tmp_path / 'check.yml'
    check_book.write_text(CHECK_PLAYBOOK)
    checked = run_playbook(check_book, extra, check=True, diff=True, env=env)
    result = checked.result('take in check mode')
    assert checked.rc == 0, checked.stderr
    assert result['changed'] is True and result['results'][0]['action'] == 'would create', result
    assert 'pre-change' in result['diff']['after'] and 'pre-change' not in result['diff']['before']
    assert [i for i in sdk.image.images(owner=sdk.current_project_id) if i.instance_uuid == server.id] == []

    book = tmp_path / 'lifecycle.yml'
    book.write_text(PLAYBOOK)
    run = run_playbook(book, extra, env=env)
    take = run.result('take')
    assert take['changed'] is True and take['results'][0]['action'] == 'created', take
    snap = take['snapshot']
    assert snap['owner'] == 'savepoint.virt' and snap['description'] == 'from a playbook' and snap['current']
    assert take['provider'] == 'openstack'
    assert run.result('take again')['changed'] is False
    revert = run.result('revert')
    assert revert['changed'] is True and revert['results'][0]['action'] == 'reverted', revert
    after = sdk.compute.get_server(server.id)
    assert after.id == server.id and after.image.id == snap['id'] and after.status == 'SHUTOFF'
    info = run.result('info')
    assert 'snapshots' in info, info.get('msg')
    assert info['snapshots'][0]['name'] == 'pre-change' and info['guests'][0]['current'] == 'pre-change'
    assert info['guests'][0]['guest']['power_state'] == 'off'
    assert run.result('neutral info')['snapshots'][0]['id'] == snap['id']
    wrong = run.result('wrong password')
    assert wrong.get('failed') is True and wrong['error'] == 'authentication_failed', wrong
    assert run.result('remove')['changed'] is True
    assert run.rc == 0, run.stderr
    assert SECRET not in run.stderr and SECRET not in str(run.data).replace("'secret': '%s'" % SECRET, '')
    assert sdk.image.find_image(snap['id']) is None


VVV_PLAYBOOK = '''
- hosts: localhost
  gather_facts: false
  tasks:
    - name: explicit auth with a wrong password
      savepoint.virt.openstack_snapshot_info:
        auth:
          auth_url: "{{ auth_url }}"
          username: demo
          password: "{{ secret }}"
          project_name: demo
          user_domain_name: Default
          project_domain_name: Default
        name: nothing
      ignore_errors: true
    - name: a cloud dict with a wrong password
      savepoint.virt.snapshot:
        provider: openstack
        cloud:
          auth:
            auth_url: "{{ auth_url }}"
            username: demo
            password: "{{ secret }}"
            project_name: demo
            user_domain_name: Default
            project_domain_name: Default
        name: nothing
        snapshot_name: never
      ignore_errors: true
'''


def test_vvv_shows_auth_url_and_project_but_never_the_password(tmp_path, stack):
    """Only the secret keys of auth are no_log: auth_url and the project name stay readable in -vvv output
    (module_args and messages); the password, also inside a cloud dict, appears nowhere."""
    import subprocess
    import yaml
    from scripts.ansible_run import VENV_BIN, collection_env
    auth_url = yaml.safe_load(stack.clouds_yaml.read_text())['clouds']['stack-demo']['auth']['auth_url']
    book = tmp_path / 'vvv.yml'
    book.write_text(VVV_PLAYBOOK)
    env = collection_env()
    env.update(stack.environ())
    env.pop('OS_CLOUD', None)
    proc = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-vvv', str(book), '-e',
                           json.dumps({'secret': SECRET, 'auth_url': auth_url})],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert SECRET not in out
    assert out.count('authentication_failed') >= 2, out[-3000:]
    assert '"auth_url": "%s"' % auth_url in out and '"project_name": "demo"' in out, out[-3000:]
    assert 'the cloud at %s' % auth_url.rstrip('/') in out or 'at %s' % auth_url in out, out[-3000:]

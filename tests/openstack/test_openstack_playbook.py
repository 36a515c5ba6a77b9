"""openstack_snapshot, openstack_snapshot_info and snapshot (provider: openstack) through
ansible-playbook, as users run them, against the local OpenStack services: check mode first,
then the real lifecycle, and a wrong password that must never show up in the output."""

from __future__ import annotations

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

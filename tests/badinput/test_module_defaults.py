"""The module_defaults promise, through a real ansible-playbook run on libvirt's test driver.

One ``group/savepoint.virt.snapshot`` block holds the connection options of every provider (and
include_volumes); every module of the group must accept it: each uses its own provider's options
and ignores the others'. The VMware and OpenStack modules are pointed at nothing reachable (a
closed loopback port, a cloud that is not in clouds.yaml), so their failure proves the options
were accepted and used, without contacting anything but loopback.
"""

from __future__ import annotations

import pytest

import json
import socket
import subprocess
from pathlib import Path

from scripts.ansible_run import VENV_BIN, collection_env


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.playbook
def test_one_group_of_module_defaults_serves_every_module(tmp_path: Path):
    port = closed_port()
    defaults = {'uri': 'test:///default', 'hostname': '127.0.0.1', 'port': port, 'username': 'u',
                'password': 'secret-pw-1234', 'validate_certs': True, 'datacenter': 'DC0',
                'cloud': 'no-such-cloud', 'interface': 'public', 'api_timeout': 5}
    task = {'ignore_errors': True}
    play = [{
        'hosts': 'localhost', 'gather_facts': False, 'connection': 'local',
        'module_defaults': {'group/savepoint.virt.snapshot': defaults},
        'tasks': [
            dict(task, name='libvirt create', **{'savepoint.virt.libvirt_snapshot': {
                'name': 'test', 'snapshot_name': 'md', 'description': 'via module_defaults'}}),
            dict(task, name='neutral create', **{'savepoint.virt.snapshot': {
                'provider': 'libvirt', 'name': 'test', 'snapshot_name': 'md'}}),
            dict(task, name='libvirt info', **{'savepoint.virt.libvirt_snapshot_info': {'name': 'test'}}),
            dict(task, name='neutral info', **{'savepoint.virt.snapshot_info': {
                'provider': 'libvirt', 'name': 'test'}}),
            dict(task, name='vmware info', **{'savepoint.virt.vmware_snapshot_info': {'name': 'vm'}}),
            dict(task, name='openstack info', **{'savepoint.virt.openstack_snapshot_info': {'name': 'srv'}}),
            dict(task, name='vmware create', **{'savepoint.virt.vmware_snapshot': {
                'name': 'vm', 'snapshot_name': 'md'}}),
        ]}, {
        'hosts': 'localhost', 'gather_facts': False, 'connection': 'local',
        'module_defaults': {'group/savepoint.virt.snapshot': dict(defaults, include_volumes=True)},
        'tasks': [
            dict(task, name='info with include_volumes', **{
                'savepoint.virt.libvirt_snapshot_info': {'name': 'test'}}),
            dict(task, name='neutral info with include_volumes', **{
                'savepoint.virt.snapshot_info': {'provider': 'libvirt', 'name': 'test'}}),
            dict(task, name='libvirt create with include_volumes', **{
                'savepoint.virt.libvirt_snapshot': {'name': 'test', 'snapshot_name': 'md'}}),
        ]}]
    # Each task registers its result under a name derived from the task name; a last play writes
    # them all to a file (no stdout callback: ansible.builtin.json only exists from 2.19).
    names = []
    for one in play:
        for item in one['tasks']:
            item['register'] = 'r_%d' % len(names)
            names.append(item['name'])
    out = tmp_path / 'results.json'
    play.append({'hosts': 'localhost', 'gather_facts': False, 'connection': 'local', 'tasks': [
        {'name': 'collect', 'ansible.builtin.copy': {'dest': str(out), 'mode': '0600', 'content': '{{ %s | to_json }}'
                                                     % ('{%s}' % ', '.join("%r: r_%d" % (n, i) for i, n in enumerate(names)))}}]})
    (tmp_path / 'play.yml').write_text(json.dumps(play))
    env = collection_env()
    env.update({'OS_CLIENT_CONFIG_FILE': str(tmp_path / 'none.yaml')})
    proc = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-i', 'localhost,', str(tmp_path / 'play.yml')],
                          env=env, capture_output=True, text=True, check=False, cwd=str(tmp_path))
    assert out.exists(), (proc.stdout[-3000:], proc.stderr[-3000:])
    results = json.loads(out.read_text())
    for name in ('libvirt create', 'neutral create', 'libvirt info', 'neutral info',
                 'info with include_volumes', 'neutral info with include_volumes'):
        assert not results[name].get('failed'), (name, results[name].get('msg'))
    assert results['libvirt create']['results'][0]['action'] == 'created'
    assert results['libvirt create']['snapshot']['description'] == 'via module_defaults'
    assert results['neutral info']['guests'][0]['guest']['name'] == 'test'
    # The other providers' modules took the group's options and used them: they failed connecting.
    for name, words in (('vmware info', ['127.0.0.1', str(port)]), ('vmware create', ['127.0.0.1']),
                        ('openstack info', ['no-such-cloud'])):
        result = results[name]
        assert result.get('failed') and 'Unsupported parameters' not in result['msg'], (name, result['msg'])
        assert all(w in result['msg'] for w in words), (name, result['msg'])
    # include_volumes for libvirt stays an error (it would be silently dropped otherwise), named.
    refused = results['libvirt create with include_volumes']
    assert refused.get('failed') and 'include_volumes' in refused['msg'] and 'openstack' in refused['msg']
    assert 'secret-pw-1234' not in proc.stdout + out.read_text()

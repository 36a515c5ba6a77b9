"""The AWX credential type definitions (docs/awx/credential_types/) render as AWX renders them."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'integration'))
import awx_job  # noqa: E402

KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----'
HOSTS = 'kvm01.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n'


@pytest.fixture
def libvirt_type():
    return awx_job.load_type('savepoint_libvirt')


def test_definition_has_the_shape_the_api_takes(libvirt_type):
    assert set(libvirt_type) == {'name', 'kind', 'description', 'inputs', 'injectors'}
    assert libvirt_type['kind'] in ('cloud', 'net')  # the kinds AWX allows for custom types
    fields = {f['id']: f for f in libvirt_type['inputs']['fields']}
    assert all({'id', 'label', 'type'} <= set(f) for f in fields.values())
    assert set(libvirt_type['inputs']['required']) <= set(fields)
    assert fields['ssh_key_data']['secret'] is True and fields['ssh_key_data']['format'] == 'ssh_private_key'
    assert set(libvirt_type['injectors']) <= {'file', 'env', 'extra_vars'}


def test_uri_only(libvirt_type, tmp_path):
    env, extra = awx_job.inject_custom(libvirt_type, {'uri': 'qemu:///system'}, tmp_path)
    assert env == {'LIBVIRT_DEFAULT_URI': 'qemu:///system'} and extra == {}


def test_key_and_known_hosts_become_files_named_in_the_uri(libvirt_type, tmp_path):
    env = awx_job.inject_custom(libvirt_type, {'uri': 'qemu+libssh://root@kvm01.example.com/system',
                                                  'ssh_key_data': KEY, 'known_hosts': HOSTS}, tmp_path)[0]
    uri = urlsplit(env['LIBVIRT_DEFAULT_URI'])
    assert (uri.scheme, uri.netloc, uri.path) == ('qemu+libssh', 'root@kvm01.example.com', '/system')
    query = parse_qs(uri.query)
    assert set(query) == {'keyfile', 'known_hosts'}
    keyfile, known = Path(query['keyfile'][0]), Path(query['known_hosts'][0])
    assert keyfile.read_text() == KEY + '\n'  # AWX completes the key's last line
    assert known.read_text() == HOSTS
    for path in (keyfile, known):
        assert path.parent == tmp_path / 'env' and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert KEY not in env['LIBVIRT_DEFAULT_URI']


def test_existing_query_is_kept(libvirt_type, tmp_path):
    env = awx_job.inject_custom(libvirt_type, {'uri': 'qemu+libssh://root@h/system?known_hosts_verify=normal',
                                                  'ssh_key_data': KEY}, tmp_path)[0]
    query = parse_qs(urlsplit(env['LIBVIRT_DEFAULT_URI']).query)
    assert set(query) == {'known_hosts_verify', 'keyfile'}


def test_uri_is_required(libvirt_type, tmp_path):
    with pytest.raises(ValueError, match='uri'):
        awx_job.inject_custom(libvirt_type, {'ssh_key_data': KEY}, tmp_path)


def test_builtin_openstack_shape_is_one_devstack_cloud_without_os_cloud(tmp_path):
    env = awx_job.inject_openstack(tmp_path, 'https://keystone.example.com:5000/v3', 'u', 's3cret', 'p',
                                   verify_ssl=False)
    assert set(env) == {'OS_CLIENT_CONFIG_FILE'}
    clouds = awx_job.yaml.safe_load(Path(env['OS_CLIENT_CONFIG_FILE']).read_text())['clouds']
    assert list(clouds) == ['devstack'] and clouds['devstack']['verify'] is False

"""The molecule_instance role's filters: molecule's instance config and Ansible's control paths."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.savepoint.virt.plugins.filter.molecule import (molecule_control_paths,
                                                                         molecule_instance_config)


def platform(name='instance', **savepoint):
    base = {'provider': 'libvirt', 'address': '127.0.0.1', 'port': '2222', 'identity_file': '/k'}
    base.update(savepoint)
    return {'name': name, 'savepoint': {k: v for k, v in base.items() if v is not None}}


def test_ssh_platform_becomes_address_user_port_identity():
    assert molecule_instance_config([platform()]) == [
        {'instance': 'instance', 'address': '127.0.0.1', 'port': 2222, 'user': 'root', 'identity_file': '/k'}]


def test_local_platform_for_api_level_scenarios():
    (entry,) = molecule_instance_config([platform(provider='vmware', address=None, port=None, identity_file=None,
                                                  connection_type='local')])
    assert entry['connection'] == 'local' and entry['instance'] == 'instance'


@pytest.mark.parametrize('change,message', [
    ({'address': ''}, 'savepoint.address'),
    ({'address': None}, 'savepoint.address is needed'),
    ({'port': 'ssh'}, 'savepoint.port'),
    ({'port': 70000}, 'savepoint.port'),
    ({'user': ''}, 'savepoint.user'),
    ({'identity_file': ''}, 'savepoint.identity_file'),
    ({'connection_type': 'winrm'}, 'connection_type'),
])
def test_bad_platform_is_refused_naming_the_option(change, message):
    bad = platform()
    bad['savepoint'].update(change)
    if change.get('address', 1) is None:
        del bad['savepoint']['address']
    with pytest.raises(AnsibleFilterError, match=message):
        molecule_instance_config([bad])


def test_platform_without_savepoint_or_name_is_refused():
    with pytest.raises(AnsibleFilterError, match="'savepoint' dictionary"):
        molecule_instance_config([{'name': 'x'}])
    with pytest.raises(AnsibleFilterError, match='name'):
        molecule_instance_config([{'savepoint': {}}])
    with pytest.raises(AnsibleFilterError, match='non-empty list'):
        molecule_instance_config([])


def test_control_path_is_the_one_ansibles_ssh_plugin_uses(tmp_path):
    (path,) = molecule_control_paths([platform(), platform('api', connection_type='local')], str(tmp_path))
    # ansible's own ssh plugin, with the port as it comes from the instance config (an int)
    from ansible.plugins.connection.ssh import Connection
    assert path == Connection._create_control_path('127.0.0.1', 2222, 'root') % {'directory': str(tmp_path)}

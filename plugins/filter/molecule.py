# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the savepoint.virt.molecule_instance role (molecule_create / molecule_destroy).

Plain functions, unit-tested without Ansible: what molecule's instance config says about each
platform, and which SSH control sockets Ansible holds for them.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

CONNECTION_TYPES = ('ssh', 'local')


def _platform(platform: Any) -> Mapping[str, Any]:
    if not isinstance(platform, Mapping) or not platform.get('name'):
        raise AnsibleFilterError('every molecule platform needs a name; got %r' % (platform,))
    options = platform.get('savepoint')
    if not isinstance(options, Mapping):
        raise AnsibleFilterError("molecule platform '%s' needs a 'savepoint' dictionary" % platform['name'])
    return options


def _endpoint(name: str, options: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """address/port/user/identity_file of an SSH platform, checked; None when it has no address."""
    if options.get('address') is None:
        return None
    address = options['address']
    if not isinstance(address, str) or not address.strip():
        raise AnsibleFilterError("molecule platform '%s': savepoint.address must be a host name or address, "
                                 "not %r" % (name, address))
    port = options.get('port', 22)
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise AnsibleFilterError("molecule platform '%s': savepoint.port must be a TCP port, not %r"
                                 % (name, options.get('port')))
    user = options.get('user', 'root')
    if not isinstance(user, str) or not user:
        raise AnsibleFilterError("molecule platform '%s': savepoint.user must be a user name, not %r" % (name, user))
    found: Dict[str, Any] = {'address': address, 'port': port, 'user': user}
    identity = options.get('identity_file')
    if identity is not None:
        if not isinstance(identity, str) or not identity:
            raise AnsibleFilterError("molecule platform '%s': savepoint.identity_file must be a path, not %r"
                                     % (name, identity))
        found['identity_file'] = identity
    return found


def molecule_instance_config(platforms: Any) -> List[Dict[str, Any]]:
    """Molecule's instance_config.yml entries: one per platform (instance, address, user, port,
    identity_file; `connection` for API-level platforms that molecule reaches locally)."""
    if not isinstance(platforms, list) or not platforms:
        raise AnsibleFilterError('molecule_yml.platforms must be a non-empty list')
    entries = []
    for platform in platforms:
        options = _platform(platform)
        name = platform['name']
        kind = options.get('connection_type', 'ssh')
        if kind not in CONNECTION_TYPES:
            raise AnsibleFilterError("molecule platform '%s': savepoint.connection_type must be one of %s, not %r"
                                     % (name, ', '.join(CONNECTION_TYPES), kind))
        endpoint = _endpoint(name, options)
        if kind == 'ssh':
            if endpoint is None:
                raise AnsibleFilterError("molecule platform '%s': savepoint.address is needed to reach the guest "
                                         "over SSH (or set savepoint.connection_type: local)" % name)
            entries.append(dict(instance=name, **endpoint))
        else:
            entry: Dict[str, Any] = {'instance': name, 'connection': kind, 'address': 'localhost',
                                     'user': os.environ.get('USER', 'root'), 'port': 0}
            entries.append(entry)
    return entries


def molecule_control_paths(platforms: Any, directory: str) -> List[str]:
    """Ansible's SSH ControlPath of every SSH platform (ssh connection plugin: the first ten hex
    digits of sha1('<host>-<port>-<user>') in control_path_dir)."""
    paths = []
    for entry in molecule_instance_config(platforms):
        if entry.get('connection', 'ssh') != 'ssh':
            continue
        digest = hashlib.sha1(('%s-%s-%s' % (entry['address'], entry['port'], entry['user'])).encode()).hexdigest()
        paths.append(os.path.join(os.path.expanduser(directory), digest[:10]))
    return paths


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        # a filter is named as its function
        return {function.__name__: function for function in (
            molecule_instance_config, molecule_control_paths,
        )}

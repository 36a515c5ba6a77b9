# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory hosts -> one batch of guests per provider and connection.

The prune role and the report playbook run ONE module task per batch, so a
fleet of a thousand guests on one vCenter is one task, not a thousand. Hosts
map to guests the way the guard role maps them:

* ``savepoint_provider``   libvirt, vmware or openstack (required)
* ``savepoint_guest``      the guest's name (default: the inventory hostname)
* ``savepoint_guest_uuid`` the guest's UUID instead of its name
* ``savepoint_connection`` dict of the provider's connection options

Pure logic: no Ansible import, so it is unit-tested as is.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Sequence

from ._errors import InvalidRequestError

PROVIDERS = ('libvirt', 'openstack', 'vmware')


def _text(host: str, hostvars: Mapping[str, Any], key: str) -> Any:
    value = hostvars.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError('host %s: %s must be a string, not %s' % (host, key, type(value).__name__))
    if not value.strip():
        raise InvalidRequestError('host %s: %s is empty' % (host, key))
    return value


def guest_of(host: str, hostvars: Mapping[str, Any]) -> Dict[str, str]:
    """The guests: entry of one inventory host."""
    uuid = _text(host, hostvars, 'savepoint_guest_uuid')
    name = _text(host, hostvars, 'savepoint_guest')
    if uuid and name:
        raise InvalidRequestError('host %s: set savepoint_guest or savepoint_guest_uuid, not both' % host)
    if uuid:
        # an OpenStack server's UUID is its id; libvirt and VMware know a separate uuid
        return {'id': uuid} if hostvars.get('savepoint_provider') == 'openstack' else {'uuid': uuid}
    return {'name': name or host}


def batches(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str]) -> List[Dict[str, Any]]:
    """[{provider, connection_host, guests, hosts}], one per provider and distinct connection, in host order.

    A batch names the host whose ``savepoint_connection`` it uses, never the
    options themselves: batches become facts, and facts are printed (JSON
    callback, -v, AWX job events) where a password must never appear.

    Every host is checked before any batch is returned, so a typo on the last
    host stops the run before the first provider is touched.
    """
    if not hosts:
        raise InvalidRequestError('no hosts to work on: target_hosts matched no inventory host')
    found: Dict[str, Dict[str, Any]] = {}
    seen: Dict[Any, str] = {}
    for host in hosts:
        hv = hostvars.get(host)
        if hv is None:
            raise InvalidRequestError('host %s is not in the inventory' % host)
        provider = hv.get('savepoint_provider')
        if provider in (None, ''):
            raise InvalidRequestError('host %s: savepoint_provider is not set (one of %s)'
                                      % (host, ', '.join(PROVIDERS)))
        if provider not in PROVIDERS:
            raise InvalidRequestError('host %s: savepoint_provider %r is not one of %s'
                                      % (host, provider, ', '.join(PROVIDERS)))
        connection = hv.get('savepoint_connection') or {}
        if not isinstance(connection, Mapping):
            raise InvalidRequestError('host %s: savepoint_connection must be a dict of connection options' % host)
        connection = dict(connection)
        guest = guest_of(host, hv)
        # The key holds the connection (secrets too) but never leaves this function.
        key = provider + '\0' + json.dumps(connection, sort_keys=True, default=str)
        identity = (key, tuple(sorted(guest.items())))
        if identity in seen:
            raise InvalidRequestError('hosts %s and %s name the same guest %s on %s'
                                      % (seen[identity], host, next(iter(guest.values())), provider))
        seen[identity] = host
        batch = found.setdefault(key, {'provider': provider, 'connection_host': host, 'guests': [], 'hosts': []})
        batch['guests'].append(guest)
        batch['hosts'].append(host)
    return list(found.values())

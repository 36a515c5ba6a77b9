"""The secrets suite's table: a known password, token and URI userinfo for every provider, given
through options, environment, clouds.yaml and the role, on failing and succeeding paths.

Each case names the secrets that must never appear and a `visible` text that must appear (so that
a case whose output is empty, or that never reached the code under test, fails instead of passing).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import yaml

PASSWORD = 'Pw-9f3kQz7-known'
URI_PASSWORD = 'Ui-41xv8M-known'
URI_USER = 'sp-secret-user'
TOKEN = 'gAAAAABtok-7Hq2-known-token'
SECRETS = [PASSWORD, URI_PASSWORD, TOKEN]


def free_port() -> int:
    """A loopback port nothing listens on (chosen at run time)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@dataclass
class Case:
    id: str
    provider: str
    args: Dict[str, Any]
    env: Dict[str, str] = field(default_factory=dict)
    visible: str = '127.0.0.1'
    fails: bool = True
    needs: str = ''                      # '' | 'vcsim' | 'stack'
    files: Optional[Callable[[Path], Dict[str, str]]] = None   # writes files, returns extra env


def libvirt_cases() -> List[Case]:
    port = free_port()
    uri = 'qemu+tcp://%s:%s@127.0.0.1:%d/system' % (URI_USER, URI_PASSWORD, port)
    return [
        Case('libvirt-uri-option', 'libvirt', {'uri': uri, 'name': 'g', 'snapshot_name': 's'}),
        Case('libvirt-uri-env', 'libvirt', {'name': 'g', 'snapshot_name': 's'}, env={'LIBVIRT_DEFAULT_URI': uri}),
        Case('libvirt-uri-info', 'libvirt', {'uri': uri, 'name': 'g', 'state': 'info'}),
    ]


def vmware_cases(vcsim: Any = None) -> List[Case]:
    dead = free_port()
    cases = [
        Case('vmware-password-option-unreachable', 'vmware',
             {'hostname': '127.0.0.1', 'port': dead, 'username': 'u', 'password': PASSWORD,
              'validate_certs': False, 'name': 'g', 'snapshot_name': 's'}),
        Case('vmware-password-env-unreachable', 'vmware',
             {'hostname': '127.0.0.1', 'port': dead, 'validate_certs': False, 'name': 'g', 'snapshot_name': 's'},
             env={'VMWARE_USER': 'u', 'VMWARE_PASSWORD': PASSWORD}),
    ]
    if vcsim is not None:
        live = {'hostname': vcsim.host, 'port': vcsim.port, 'validate_certs': False}
        cases += [
            Case('vmware-password-option-live-missing-guest', 'vmware',
                 dict(live, username='u', password=PASSWORD, name='sp-no-such-vm', snapshot_name='s'),
                 visible='sp-no-such-vm', needs='vcsim'),
            Case('vmware-password-env-live-ok', 'vmware',
                 dict(live, name='DC0_H0_VM0', snapshot_name='sp-secret-none', state='absent'),
                 env={'VMWARE_USER': 'u', 'VMWARE_PASSWORD': PASSWORD}, visible='DC0_H0_VM0', fails=False,
                 needs='vcsim'),
        ]
    return cases


def _clouds(auth_url: str, password: str) -> Callable[[Path], Dict[str, str]]:
    def write(tmp: Path) -> Dict[str, str]:
        path = tmp / 'clouds.yaml'
        path.write_text(yaml.safe_dump({'clouds': {'sp-secret': {
            'auth': {'auth_url': auth_url, 'username': 'demo', 'password': password, 'project_name': 'demo',
                     'user_domain_name': 'Default', 'project_domain_name': 'Default'},
            'region_name': 'RegionOne', 'identity_api_version': 3}}}))
        return {'OS_CLIENT_CONFIG_FILE': str(path)}
    return write


def openstack_cases(stack_port: Optional[int] = None) -> List[Case]:
    port = free_port()
    url = 'http://%s:%s@127.0.0.1:%d/v3' % (URI_USER, URI_PASSWORD, port)
    auth = {'auth_url': url, 'username': 'demo', 'password': PASSWORD, 'project_name': 'demo',
            'user_domain_name': 'Default', 'project_domain_name': 'Default'}
    cases = [
        Case('openstack-auth-option', 'openstack', {'auth': auth, 'name': 'g', 'snapshot_name': 's'}),
        Case('openstack-token-option', 'openstack',
             {'auth': {'auth_url': url, 'token': TOKEN, 'project_name': 'demo', 'project_domain_name': 'Default'},
              'auth_type': 'v3token', 'name': 'g', 'snapshot_name': 's'}),
        Case('openstack-clouds-yaml', 'openstack', {'cloud': 'sp-secret', 'name': 'g', 'snapshot_name': 's'},
             files=_clouds(url, PASSWORD)),
        Case('openstack-os-env', 'openstack', {'name': 'g', 'snapshot_name': 's'},
             env={'OS_AUTH_URL': url, 'OS_USERNAME': 'demo', 'OS_PASSWORD': PASSWORD, 'OS_PROJECT_NAME': 'demo',
                  'OS_USER_DOMAIN_NAME': 'Default', 'OS_PROJECT_DOMAIN_NAME': 'Default',
                  'OS_IDENTITY_API_VERSION': '3'}),
        Case('openstack-os-token-env', 'openstack', {'name': 'g', 'snapshot_name': 's'},
             env={'OS_AUTH_URL': url, 'OS_AUTH_TYPE': 'v3token', 'OS_TOKEN': TOKEN, 'OS_PROJECT_NAME': 'demo',
                  'OS_PROJECT_DOMAIN_NAME': 'Default', 'OS_IDENTITY_API_VERSION': '3'}),
    ]
    if stack_port is not None:
        live = 'http://%s:%s@127.0.0.1:%d/v3' % (URI_USER, URI_PASSWORD, stack_port)
        cases += [
            Case('openstack-wrong-password-live', 'openstack', {'cloud': 'sp-secret', 'name': 'g',
                                                                'snapshot_name': 's'},
                 files=_clouds(live, PASSWORD), needs='stack'),
            Case('openstack-wrong-token-live', 'openstack',
                 {'auth': {'auth_url': live, 'token': TOKEN, 'project_name': 'demo',
                           'project_domain_name': 'Default'}, 'auth_type': 'v3token', 'name': 'g',
                  'snapshot_name': 's'}, needs='stack'),
        ]
    return cases

"""A job as AWX/AAP hands it to ansible-runner, for tests: private data directory, credentials
injected the way AWX injects them, the collection built and installed from its tarball.

Credential injection follows AWX's own rules (awx/main/models/credential/injectors.py and the
custom-credential code; re-implemented here, not copied):
  * custom types: inputs that are not set are absent from the template namespace (booleans
    default to false); ssh_private_key fields get a trailing newline; every `file` template is
    rendered (sandboxed Jinja) into <pdd>/env/tmpXXXX, mode 0600, and named by
    {{ tower.filename }} / {{ tower.filename.<label> }}; then `env` and `extra_vars` templates.
  * built-in VMware: VMWARE_USER, VMWARE_PASSWORD, VMWARE_HOST, VMWARE_VALIDATE_CERTS (str of
    AWX's VMWARE_VALIDATE_CERTS setting: 'True' / 'False').
  * built-in OpenStack: a clouds.yaml with ONE cloud named `devstack` (auth from host/username/
    password/project[/project_domain_name/domain], verify from verify_ssl, region_name) and
    OS_CLIENT_CONFIG_FILE pointing at it; no OS_CLOUD.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = Path(__file__).resolve().parents[2]
CREDENTIAL_TYPES = REPO / 'docs' / 'awx' / 'credential_types'
BIN = Path(sys.executable).parent


def _write_private(pdd: Path, text: str) -> str:
    env_dir = pdd / 'env'
    env_dir.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=str(env_dir))
    with os.fdopen(handle, 'w') as f:
        f.write(text)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def load_type(name: str) -> Dict[str, Any]:
    return yaml.safe_load((CREDENTIAL_TYPES / ('%s.yml' % name)).read_text())


def inject_custom(cred_type: Dict[str, Any], inputs: Dict[str, Any], pdd: Path) -> Tuple[Dict[str, str], Dict]:
    """env and extra_vars a job gets from a credential of a custom type."""
    fields = cred_type['inputs'].get('fields', [])
    ids = {f['id'] for f in fields}
    unknown = set(inputs) - ids
    if unknown:
        raise ValueError('inputs %s are not fields of %s' % (sorted(unknown), cred_type['name']))
    missing = [r for r in cred_type['inputs'].get('required', []) if inputs.get(r) in (None, '')]
    if missing:
        raise ValueError('%s needs %s' % (cred_type['name'], missing))
    tower = SimpleNamespace()
    namespace: Dict[str, Any] = {'tower': tower}
    for key, value in inputs.items():
        if isinstance(value, bool) or value:
            namespace[key] = value
    for field in fields:
        if field['type'] == 'boolean' and field['id'] not in inputs:
            namespace[field['id']] = False
        if field.get('format') == 'ssh_private_key' and field['id'] in namespace:
            if not str(namespace[field['id']]).endswith('\n'):
                namespace[field['id']] = str(namespace[field['id']]) + '\n'
    sandbox = ImmutableSandboxedEnvironment()
    injectors = cred_type.get('injectors', {})
    single: Optional[str] = None
    many: Dict[str, str] = {}
    for label, template in injectors.get('file', {}).items():
        path = _write_private(pdd, sandbox.from_string(template).render(**namespace))
        if '.' in label:
            many[label.split('.', 1)[1]] = path
        else:
            single = path
    tower.filename = single or SimpleNamespace(**many)
    env = {k: sandbox.from_string(t).render(**namespace) for k, t in injectors.get('env', {}).items()}
    extra = {k: sandbox.from_string(t).render(**namespace) for k, t in injectors.get('extra_vars', {}).items()}
    return env, extra


def inject_vmware(host: str, username: str, password: str, validate_certs: bool = False) -> Dict[str, str]:
    return {'VMWARE_USER': username, 'VMWARE_PASSWORD': password, 'VMWARE_HOST': host,
            'VMWARE_VALIDATE_CERTS': str(validate_certs)}


def inject_openstack(pdd: Path, host: str, username: str, password: str, project: str,
                     project_domain_name: str = '', domain: str = '', region: str = '',
                     verify_ssl: bool = True) -> Dict[str, str]:
    auth = {'auth_url': host, 'username': username, 'password': password, 'project_name': project}
    if project_domain_name:
        auth['project_domain_name'] = project_domain_name
    if domain:
        auth['domain_name'] = domain
    cloud: Dict[str, Any] = {'auth': auth, 'verify': verify_ssl}
    if region:
        cloud['region_name'] = region
    path = _write_private(pdd, yaml.safe_dump({'clouds': {'devstack': cloud}}, default_flow_style=False))
    return {'OS_CLIENT_CONFIG_FILE': path}


def build_and_install_collection(dest: Path) -> Path:
    """ansible-galaxy collection build + install, as a project's collections/requirements.yml
    or an EE would get it; returns the collections path (holding ansible_collections/)."""
    dist = dest / 'dist'
    dist.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'build', '--force', '--output-path', str(dist),
                    str(REPO)], check=True, capture_output=True, env=env)
    (tarball,) = dist.glob('savepoint-virt-*.tar.gz')
    collections = dest / 'collections'
    subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'install', '--force', str(tarball), '-p',
                    str(collections)], check=True, capture_output=True, env=env)
    if not (collections / 'ansible_collections' / 'savepoint' / 'virt' / 'galaxy.yml').exists() and \
            not (collections / 'ansible_collections' / 'savepoint' / 'virt' / 'MANIFEST.json').exists():
        raise RuntimeError('the collection was not installed into %s' % collections)
    return collections


def private_data_dir(root: Path, inventory: str, project: Dict[str, Any], extravars: Dict[str, Any],
                     envvars: Dict[str, str], passwords: Optional[Dict[str, str]] = None) -> Path:
    """<root>/pdd laid out like AWX's: inventory/hosts, env/{extravars,envvars,passwords,settings},
    project/<files>. `project` maps file names to YAML data (or text)."""
    pdd = root / 'pdd'
    for sub in ('inventory', 'env', 'project'):
        (pdd / sub).mkdir(parents=True, exist_ok=True)
    (pdd / 'inventory' / 'hosts').write_text(inventory)
    for name, data in project.items():
        target = pdd / 'project' / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    (pdd / 'env' / 'extravars').write_text(yaml.safe_dump(extravars))
    (pdd / 'env' / 'envvars').write_text(yaml.safe_dump(envvars))
    (pdd / 'env' / 'passwords').write_text(yaml.safe_dump(passwords or {}))
    (pdd / 'env' / 'settings').write_text(yaml.safe_dump({'idle_timeout': 0, 'job_timeout': 0,
                                                          'pexpect_timeout': 10, 'suppress_ansible_output': True}))
    return pdd


def secrets_in_artifacts(pdd: Path, secrets: List[str]) -> List[str]:
    """Every file under artifacts/ that holds one of the secrets (as text).

    Except artifacts/<ident>/command: ansible-runner's own record of the process environment
    (the injected credentials are env vars by design, so it holds them; runner makes it 0600 and
    AWX neither streams it back nor stores it -- AWX keeps its own redacted copy, safe_env). It
    is checked to be private instead. Job events, stdout, status, fact cache: no exception.
    """
    found = []
    for path in (pdd / 'artifacts').rglob('*'):
        if path.is_file() and path.name == 'command' and path.parent.parent == pdd / 'artifacts':
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                found.append('%s is readable by others' % path.relative_to(pdd))
            continue
        if path.is_file():
            text = path.read_text(errors='replace')
            for secret in secrets:
                if secret and secret in text:
                    found.append('%s holds %r' % (path.relative_to(pdd), secret[:6] + '...'))
    return found


def stats_artifacts(run: Any) -> Dict[str, Any]:
    stats = [e for e in run.events if e['event'] == 'playbook_on_stats']
    assert stats, 'no playbook_on_stats event'
    return stats[-1]['event_data'].get('artifact_data', {})


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

"""The bad-input suite: one table (cases.yml), one runner, every provider, the modules run for real.

For each provider, every case of the table runs through ansible-playbook against the provider's own
module and the neutral one (``savepoint.virt.snapshot`` with ``provider:``), one inventory host per
case (so Ansible's forks run them side by side). Each must fail with a message naming the offending
option or object -- never a traceback or "MODULE FAILURE" -- and report changed: false. On the real
providers (libvirtd+QEMU, vcsim, OpenStack) the guest's snapshot tree, seeded with an owned and a
foreign snapshot, is read before and after and must be identical. libvirt's test driver keeps its
state per process, so there only the messages are checked (it runs in the fast set, each case
through one of the two modules).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from scripts.ansible_run import VENV_BIN, collection_env

HERE = Path(__file__).resolve().parent
CASES: List[Dict[str, Any]] = yaml.safe_load((HERE / 'cases.yml').read_text())
GUEST_KEYS = ('name', 'uuid', 'guests', 'moid', 'server_id')
TOKENS = {'__BIG_INT__': 10 ** 400, '__LONG_DURATION__': '9' * 400 + 'd'}
MODULES = {'snapshot': ('{p}_snapshot', 'snapshot'), 'info': ('{p}_snapshot_info', 'snapshot_info')}


def _fill(value: Any, names: Dict[str, str]) -> Any:
    if isinstance(value, str):
        if value in TOKENS:
            return TOKENS[value]
        for key, text in names.items():
            value = value.replace('{%s}' % key, text)
        return value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def applicable(provider: str, seeded: bool) -> List[Dict[str, Any]]:
    return [c for c in CASES if provider in c.get('providers', ('libvirt', 'vmware', 'openstack'))
            and (seeded or not c.get('seeded'))]


def run_table(provider: str, connection: Dict[str, Any], names: Dict[str, str], seeded: bool,
              env: Optional[Dict[str, str]] = None, alternate: bool = False) -> Tuple[int, List[str]]:
    """Run every applicable case through both modules (``alternate``: through one of them, taking
    turns, for the fast set); return (runs, problems)."""
    hosts: Dict[str, Dict[str, Any]] = {}
    groups: Dict[str, Dict[str, Any]] = {}
    expected: Dict[str, Tuple[Dict[str, Any], str]] = {}
    for index, case in enumerate(applicable(provider, seeded)):
        args = _fill(dict(case.get('args') or {}), names)
        if not case.get('no_guest') and not any(k in args for k in GUEST_KEYS):
            args['name'] = names['guest']
        args = dict(connection, **args)
        provider_module, neutral_module = MODULES[case.get('module', 'snapshot')]
        variants = [(provider_module.format(p=provider), {}), (neutral_module, {'provider': provider})]
        if alternate:
            variants = [variants[index % 2]]
        for module, extra in variants:
            host = '%s--%s' % (case['id'], module)
            hosts[host] = {'ansible_connection': 'local', 'case_args': dict(args, **extra)}
            expected[host] = (case, module)
            groups.setdefault(module, {'hosts': {}})['hosts'][host] = {}
    inventory = {'all': {'hosts': hosts, 'children': groups}}
    workdir = Path(os.environ.get('TMPDIR', '/tmp')) / ('sp-badinput-%s-%d' % (provider, os.getpid()))
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / 'results.json'
    # No stdout callback (ansible.builtin.json is 2.19+): every case registers its result and one
    # last task on localhost writes them all, read from hostvars, to a file.
    plays = [{'hosts': module, 'gather_facts': False, 'tasks': [
        {'name': 'case', 'savepoint.virt.%s' % module: '{{ case_args }}', 'ignore_errors': True,
         'register': 'case_result'}]} for module in sorted(groups)]
    plays.append({'hosts': 'localhost', 'gather_facts': False, 'connection': 'local', 'tasks': [
        {'name': 'collect', 'ansible.builtin.copy': {
            'dest': str(out), 'mode': '0600',
            'content': "{{ dict(groups['all'] | zip(groups['all'] | map('extract', hostvars, 'case_result')))"
                       " | to_json }}"}}]})
    (workdir / 'inventory.json').write_text(json.dumps(inventory))
    (workdir / 'play.yml').write_text(json.dumps(plays))
    if out.exists():
        out.unlink()
    run_env = collection_env()
    run_env.update({'ANSIBLE_FORKS': '4', 'ANSIBLE_HOST_KEY_CHECKING': 'false'})
    run_env.update(env or {})
    proc = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-i', str(workdir / 'inventory.json'),
                           str(workdir / 'play.yml')], env=run_env, capture_output=True, text=True,
                          check=False, cwd=str(workdir))
    if not out.exists():
        raise AssertionError('ansible-playbook wrote no results (rc %s):\n%s\n%s'
                             % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    results = json.loads(out.read_text())
    problems = []
    # What each case answered, for a human to read (the messages are the point of this suite).
    (workdir / 'messages.txt').write_text(''.join('%s: %s\n' % (host, str(r.get('msg', ''))[:300].replace('\n', ' '))
                                                  for host, r in sorted(results.items())))
    for host, (case, module) in sorted(expected.items()):
        result = results.get(host)
        label = '%s [%s/%s]' % (case['id'], provider, module)
        if result is None:
            problems.append('%s: no result' % label)
            continue
        msg = str(result.get('msg', ''))
        if not result.get('failed'):
            problems.append('%s: did not fail: %s' % (label, msg or result.get('action')))
            continue
        if result.get('changed'):
            problems.append('%s: failed but reports changed: %s' % (label, msg))
        if 'Traceback' in msg or 'MODULE FAILURE' in msg or result.get('module_stderr'):
            problems.append('%s: crashed: %s' % (label, (msg + str(result.get('module_stderr', '')))[:400]))
            continue
        missing = [e for e in _fill(case['expect'], names) if str(e).lower() not in msg.lower()]
        if missing:
            problems.append('%s: message does not name %s: %s' % (label, missing, msg[:400]))
    return len(expected), problems


# -- libvirt's test driver: in the fast set --------------------------------------------------------------
@pytest.mark.playbook
def test_bad_input_on_the_libvirt_test_driver():
    # The same cases run through both modules on real libvirt (test_bad_input_on_libvirt_qemu); here
    # each goes through one of them, taking turns, to keep the fast set fast.
    runs, problems = run_table('libvirt', {'uri': 'test:///default'}, {'guest': 'test'}, seeded=False,
                               alternate=True)
    print('bad-input cases: %d table entries, %d module runs on libvirt-test' % (len(CASES), runs))
    assert runs >= 100
    assert not problems, '\n'.join(problems)


# -- real providers: the trees must not change --------------------------------------------------------------
def tree(harness: Any, ref: Any) -> List[Tuple]:
    return sorted((s.name, s.id, s.parent_id, s.current, s.description, s.owner, s.expires_at, s.kind, s.memory)
                  for s in harness.snapshots(ref))


def run_on(harness: Any, provider: str, connection: Dict[str, Any], env: Optional[Dict[str, str]] = None) -> None:
    ref = harness.new_guest()
    names = {'guest': ref.name, 'owned': 'bi-owned', 'foreign': 'bi-foreign'}
    assert harness.create(ref, 'bi-foreign', owned=False)['changed']
    assert harness.create(ref, 'bi-owned', description='seed', expires_in='30d')['changed']
    before = tree(harness, ref)
    assert len(before) == 2
    runs, problems = run_table(provider, connection, names, seeded=True, env=env)
    print('bad-input cases: %d module runs on %s' % (runs, harness.name))
    after = tree(harness, ref)
    assert after == before, 'the snapshot tree changed:\nbefore %s\nafter  %s' % (before, after)
    assert runs >= 100
    assert not problems, '\n'.join(problems)


@pytest.mark.qemu
def test_bad_input_on_libvirt_qemu():
    from contract.harness_libvirt import LibvirtQemuHarness
    harness = LibvirtQemuHarness()
    harness.start()
    try:
        run_on(harness, 'libvirt', {'uri': harness.uri})
    finally:
        harness.cleanup()
        harness.stop()


@pytest.mark.vmware
def test_bad_input_on_vcsim():
    from contract.harness_vmware import VcsimHarness
    harness = VcsimHarness()
    harness.start()
    server = harness.server
    try:
        run_on(harness, 'vmware', {'hostname': server.host, 'port': server.port, 'username': 'user',
                                   'password': 'pass', 'validate_certs': False})
    finally:
        harness.cleanup()
        harness.stop()


@pytest.mark.openstack
def test_bad_input_on_openstack():
    from contract.harness_openstack import CLOUD, OpenStackHarness
    harness = OpenStackHarness()
    harness.start()
    try:
        run_on(harness, 'openstack', {'cloud': CLOUD}, env=harness.stack.environ())
    finally:
        harness.cleanup()
        harness.stop()

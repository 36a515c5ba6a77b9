"""The modules' documentation says what they really return, and says it once per schema.

- Every key the engine and the module layer return (on success, in check mode, with --diff,
  on failure, on a rolled-back set) is documented in savepoint.virt.snapshot's RETURN; the
  results come from the real engine (on the in-memory backend) and the real failure mapping.
- Each provider module documents the same key tree as its neutral module (RETURN cannot
  come from a doc fragment in ansible-core, so the schema is repeated; this keeps it in step).
- The attributes block comes from the savepoint.virt.attributes fragment, in every module.
- The documentation lives in a sidecar plugins/modules/<name>.yml (data, read by ansible-doc,
  ansible-test validate-modules and antsibull-docs), and only there: a module file that also
  carried DOCUMENTATION would win in ansible-doc while validate-modules checks the sidecar.
"""

from __future__ import annotations

import ast
import pathlib
from typing import Any, Dict, Iterator, List, Set

import pytest
import yaml

from ansible_collections.savepoint.virt.plugins.module_utils._engine import Request, SnapshotEngine
from ansible_collections.savepoint.virt.plugins.module_utils._errors import SavepointError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef, SnapshotSpec
from ansible_collections.savepoint.virt.plugins.module_utils._module import fail
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import make_marker
from ansible_collections.savepoint.virt.plugins.module_utils._retention import RetentionRule
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

from unit.memory_backend import MemoryBackend

MODULES = pathlib.Path(__file__).resolve().parents[2] / 'plugins' / 'modules'
PROVIDERS = ('libvirt', 'vmware', 'openstack')
# Keys every Ansible module may return, documented by ansible-core itself.
COMMON = {'changed', 'failed', 'warnings', 'deprecations', 'invocation'}


def _sidecar(module: str) -> Dict[str, Any]:
    path = MODULES / (module + '.yml')
    assert path.is_file(), '%s has no sidecar documentation %s' % (module, path.name)
    return yaml.safe_load(path.read_text())


def _documented(module: str) -> Dict[str, Any]:
    return _sidecar(module)['RETURN']


def _doc_paths(doc: Dict[str, Any], prefix: str = '') -> Iterator[str]:
    for key, entry in doc.items():
        yield prefix + key
        if entry.get('contains'):
            yield from _doc_paths(entry['contains'], prefix + key + '.')


def _paths(value: Any, prefix: str, into: Set[str], open_maps: Set[str]) -> None:
    """Key paths of a result; below a key in open_maps the keys are data, not schema."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = prefix + key
            into.add(path)
            if path not in open_maps:
                _paths(item, path + '.', into, open_maps)
    elif isinstance(value, list):
        for item in value:
            _paths(item, prefix, into, open_maps)


# provider_details/error_details hold provider- or error-specific data (documented as such);
# a removed[] entry and the existing record in error_details are snapshot records.
OPEN_MAPS = {'results.snapshot.provider_details', 'snapshot.provider_details', 'error_details',
             'results.error.error_details', 'results.removed', 'diff',
             'guest.provider_details', 'results.guest.provider_details', 'guests.guest.provider_details'}


def _policy() -> WaitPolicy:
    return WaitPolicy(timeout=5.0, initial_delay=0.0, max_delay=0.0, sleep=lambda _s: None)


def _present(name: str, guests=('vm1',), **kw) -> Request:
    return Request(state='present', guests=[GuestRef(name=g) for g in guests], snapshot_name=name,
                   spec=SnapshotSpec(name=name, marker=make_marker(None, 'savepoint.virt.snapshot 0.1.0', '1d')),
                   **kw)


class _FailingModule:
    """Stands in for AnsibleModule: captures what the module layer's fail() hands to fail_json."""

    def __init__(self) -> None:
        self.result: Dict[str, Any] = {}

    def fail_json(self, **result: Any) -> None:
        self.result = result


def _failure(exc: SavepointError) -> Dict[str, Any]:
    module = _FailingModule()
    fail(module, exc, ['still waiting for create (1s of 5s)'])  # type: ignore[arg-type]
    return module.result


def _real_results() -> List[Dict[str, Any]]:
    results = []
    backend = MemoryBackend({'vm1': 'running', 'vm2': 'running'})
    results.append(SnapshotEngine(backend, check_mode=True, diff=True).run(_present('a')))
    results.append(SnapshotEngine(backend, diff=True, wait_policy=_policy()).run(_present('a')))
    results.append(SnapshotEngine(backend, diff=True, wait_policy=_policy()).run(_present('a')))  # exists
    results.append(SnapshotEngine(backend, wait_policy=_policy()).run(
        Request(state='reverted', guests=[GuestRef(name='vm1')], snapshot_name='a')))
    results.append(SnapshotEngine(backend, wait_policy=_policy()).run(
        Request(state='pruned', guests=[GuestRef(name='vm1')], retention=RetentionRule(keep_last=0),
                owner='savepoint.virt')))
    # a set that fails on one guest and is rolled back on the other
    backend = MemoryBackend({'vm1': 'running', 'vm2': 'running'}, fail_create_on={'vm2'})
    with pytest.raises(SavepointError) as err:
        SnapshotEngine(backend, wait_policy=_policy()).run(_present('set', guests=('vm1', 'vm2')))
    results.append(_failure(err.value))
    # a conflict: same name, other options
    backend = MemoryBackend({'vm1': 'running'})
    SnapshotEngine(backend, wait_policy=_policy()).run(_present('c'))
    with pytest.raises(SavepointError) as err:
        SnapshotEngine(backend, wait_policy=_policy()).run(
            Request(state='present', guests=[GuestRef(name='vm1')], snapshot_name='c',
                    spec=SnapshotSpec(name='c', description='other', marker=make_marker(None, 't'))))
    results.append(_failure(err.value))
    return results


def test_snapshot_return_documents_every_key_returned():
    documented = set(_doc_paths(_documented('snapshot')))
    results = _real_results()
    seen: Set[str] = set()
    for result in results:
        _paths(result, '', seen, OPEN_MAPS)
    # the keys of the single guest's record and snapshot are documented once, under results[]
    seen = {'results.' + p if p.startswith(('snapshot.', 'guest.')) else p for p in seen}
    undocumented = sorted(p for p in seen - documented if p.split('.')[0] not in COMMON or '.' in p)
    assert not undocumented, 'returned but not in the RETURN of savepoint.virt.snapshot: %s' % undocumented
    # the scenarios reached what the brief of this test promises
    for key in ('error', 'error_details', 'results.rollback', 'results.rolled_back', 'results.error',
                'results.snapshot.parent_id', 'results.snapshot.created_by',
                'results.snapshot.provider_details', 'results.warnings', 'results.removed', 'diff',
                'progress'):
        assert key in seen, 'no scenario returned %s: the test no longer covers it' % key
    assert {'error', 'provider_message', 'error_details'} <= documented


@pytest.mark.parametrize('provider', PROVIDERS)
@pytest.mark.parametrize('neutral', ['snapshot', 'snapshot_info'])
def test_provider_modules_document_the_same_schema(provider, neutral):
    module = neutral.replace('snapshot', provider + '_snapshot', 1)
    ours = sorted(_doc_paths(_documented(module)))
    theirs = sorted(_doc_paths(_documented(neutral)))
    assert ours == theirs, '%s RETURN differs from %s: only in %s %s; only in %s %s' % (
        module, neutral, module, sorted(set(ours) - set(theirs)), neutral, sorted(set(theirs) - set(ours)))
    assert any('.' in p for p in ours), '%s documents no contains' % module


@pytest.mark.parametrize('module', sorted(p.stem for p in MODULES.glob('*.py')))
def test_attributes_come_from_the_fragment(module):
    doc = _sidecar(module)['DOCUMENTATION']
    expected = 'savepoint.virt.attributes.info' if module.endswith('_info') else 'savepoint.virt.attributes'
    fragments = doc.get('extends_documentation_fragment') or []
    assert expected in fragments, '%s does not use %s' % (module, expected)
    # listed first: on a clash of attribute keys the first fragment wins over the builtin defaults
    assert fragments[0] == expected, '%s: %s must come first' % (module, expected)
    assert 'attributes' not in doc, '%s repeats an attributes block instead of the fragment' % module


@pytest.mark.parametrize('module', sorted(p.stem for p in MODULES.glob('*.py')))
def test_documentation_only_in_the_sidecar(module):
    docs = _sidecar(module)
    assert docs['DOCUMENTATION']['module'] == module
    assert docs['EXAMPLES'].strip() and docs['RETURN'], '%s: sidecar lacks EXAMPLES or RETURN' % module
    tree = ast.parse((MODULES / (module + '.py')).read_text())
    assigned = {getattr(t, 'id', None) for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    both = assigned & {'DOCUMENTATION', 'EXAMPLES', 'RETURN'}
    assert not both, '%s.py still assigns %s: ansible-doc would read those, validate-modules the sidecar' % (
        module, sorted(both))


def test_every_sidecar_has_its_module():
    orphans = sorted(p.name for p in MODULES.glob('*.yml') if not p.with_suffix('.py').is_file())
    assert not orphans, 'sidecar documentation without a module: %s' % orphans

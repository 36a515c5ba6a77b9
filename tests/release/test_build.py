"""The collection tarball users install: what `ansible-galaxy collection build` packs.

Builds the real tarball from this checkout (galaxy.yml's build_ignore decides) into a
temporary directory and checks its file list: everything a user or a certified-collection
reviewer needs is in it, no developer-only content is, and the built artifact installs and
documents itself.
"""

import fnmatch
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent  # the venv running the tests has ansible-core

# Shipped directories whose every source file must be in the tarball.
SHIPPED_TREES = ('plugins', 'roles', 'playbooks', 'meta', 'docs')
# Single files that must be in the tarball.
REQUIRED_FILES = (
    'MANIFEST.json', 'FILES.json', 'README.md', 'COPYING', 'CHANGELOG.md',
    'changelogs/changelog.yaml', 'changelogs/config.yaml', 'meta/runtime.yml',
    'requirements.txt', 'bindep.txt', 'docs/docsite/links.yml', 'docs/docsite/extra-docs.yml',
)
# Developer-only content: none of these may be shipped (fnmatch on tarball paths;
# 'x/*' patterns catch everything under x/).
FORBIDDEN = (
    'Makefile', 'pytest.ini', '.ansible-lint', '.gitignore', '.git', '.git/*',
    '.ci', '.ci/*', 'benchmarks', 'benchmarks/*', 'build', 'build/*', 'dist', 'dist/*',
    '.venv', '.venv/*', '.cache', '.cache/*', '.ansible', '.ansible/*', '.pytest_cache*',
    'extensions/molecule*', 'changelogs/fragments*', 'changelogs/.plugin-cache.yaml',
    'DEVELOPERS.md', '*__pycache__*', '*.pyc', '*.qcow2', '*.tar.gz',
    'docs/docsite/build*',
)


def _galaxy() -> dict:
    return yaml.safe_load((REPO / 'galaxy.yml').read_text())


@pytest.fixture(scope='module')
def workdir():
    # our own temporary directory: pytest's numbered basetemp under /tmp is shared with
    # every other pytest session of this user, whose clean-up may remove it under us
    with tempfile.TemporaryDirectory(prefix='savepoint-release-') as path:
        yield Path(path)


@pytest.fixture(scope='module')
def tarball(workdir) -> Path:
    out = workdir / 'dist'
    proc = subprocess.run(
        [str(BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out), str(REPO)],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, 'ansible-galaxy collection build failed:\n%s%s' % (proc.stdout, proc.stderr)
    built = list(out.glob('*.tar.gz'))
    assert len(built) == 1, 'expected one tarball in %s, found %s' % (out, built)
    galaxy = _galaxy()
    assert built[0].name == '%s-%s-%s.tar.gz' % (galaxy['namespace'], galaxy['name'], galaxy['version'])
    return built[0]


@pytest.fixture(scope='module')
def members(tarball) -> dict:
    with tarfile.open(tarball) as tar:
        return {m.name.rstrip('/'): m for m in tar.getmembers()}


def _source_files(tree: str) -> list:
    """Files under REPO/tree that git tracks (untracked scratch files are not the point)."""
    proc = subprocess.run(['git', '-C', str(REPO), 'ls-files', '--', tree],
                          capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return [line for line in proc.stdout.splitlines() if line and (REPO / line).is_file()]
    # not a git checkout (an unpacked source tarball): walk the tree
    return [str(p.relative_to(REPO)) for p in (REPO / tree).rglob('*')
            if p.is_file() and '__pycache__' not in p.parts and p.suffix != '.pyc']


def test_required_files_are_shipped(members):
    missing = [name for name in REQUIRED_FILES if name not in members]
    assert not missing, 'missing from the tarball: %s' % missing
    for tree in SHIPPED_TREES:
        files = _source_files(tree)
        assert files, '%s/ has no files in the source tree' % tree
        absent = [f for f in files if f not in members]
        assert not absent, 'source files of %s/ missing from the tarball: %s' % (tree, absent)
    # every guide of the docs site, in the form antsibull-docs reads (docs/docsite/rst/)
    index = yaml.safe_load((REPO / 'docs/docsite/extra-docs.yml').read_text())
    refs = [e if isinstance(e, str) else e['ref'] for s in index['sections'] for e in s['toctree']]
    absent = [r for r in refs if 'docs/docsite/rst/%s.rst' % r not in members]
    assert refs and not absent, 'extra docs missing from the tarball: %s' % absent
    modules = [n for n in members if re.fullmatch(r'plugins/modules/[a-z_]+\.py', n)]
    assert 'plugins/modules/snapshot.py' in modules and len(modules) >= 2
    # a module's documentation is its sidecar plugins/modules/<name>.yml: it ships beside it
    undocumented = [m for m in modules if m[:-len('.py')] + '.yml' not in members]
    assert not undocumented, 'modules shipped without their sidecar documentation: %s' % undocumented


def test_no_developer_only_content(members):
    shipped = sorted(members)
    leaked = [name for name in shipped if any(fnmatch.fnmatch(name, pat) for pat in FORBIDDEN)]
    assert not leaked, 'developer-only content in the tarball: %s' % leaked
    # the test suite, its services and scripts stay home; only ansible-test's sanity
    # ignore files (tests/sanity/) may ship
    tests = [name for name in shipped if name.startswith('tests/')
             and not (name == 'tests/sanity' or name.startswith('tests/sanity/'))]
    assert not tests, 'test suite content in the tarball: %s' % tests


def test_manifest_metadata(tarball):
    galaxy = _galaxy()
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile('MANIFEST.json'))
        copying = tar.extractfile('COPYING').read().decode()
    info = manifest['collection_info']
    assert info['version'] == galaxy['version']
    assert info['license'] == ['GPL-3.0-or-later'] and not info.get('license_file')
    for key in ('repository', 'homepage', 'documentation', 'issues'):
        assert re.match(r'https://\S+$', info.get(key) or ''), 'galaxy.yml %s: %r' % (key, info.get(key))
    assert info['authors'] and all(a.strip() for a in info['authors'])
    assert 'GNU GENERAL PUBLIC LICENSE' in copying and 'Version 3, 29 June 2007' in copying
    # the full text, not a pointer to it
    assert 'END OF TERMS AND CONDITIONS' in copying and len(copying) > 30000


def test_one_version_source():
    """The version written into every snapshot's created_by marker is galaxy.yml's."""
    text = (REPO / 'plugins/module_utils/_module.py').read_text()
    found = re.search(r"^COLLECTION_VERSION\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    if found:  # a constant that duplicates galaxy.yml must at least agree with it
        assert found.group(1) == _galaxy()['version']


def test_built_tarball_installs_and_documents_itself(tarball, workdir):
    dest = workdir / 'collections'
    # only the fresh install is visible: the test session's ANSIBLE_COLLECTIONS_PATH points
    # at this checkout, and ansible-galaxy would call the collection "already installed"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(dest), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false')
    proc = subprocess.run(
        [str(BIN / 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(dest), str(tarball)],
        capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (dest / 'ansible_collections/savepoint/virt/MANIFEST.json').is_file(), proc.stdout + proc.stderr
    proc = subprocess.run([str(BIN / 'ansible-doc'), '--json', 'savepoint.virt.snapshot'],
                          capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)['savepoint.virt.snapshot']
    assert str(dest) in doc['doc']['filename'], 'ansible-doc read %s, not the installed tarball' % doc['doc']['filename']
    assert doc['return'], 'installed snapshot module has no RETURN documentation'

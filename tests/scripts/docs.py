"""`make docs`: the collection's HTML documentation site, built offline with antsibull-docs.

1. The Markdown guides in docs/ that docs/docsite/extra-docs.yml lists are converted to
   reStructuredText in docs/docsite/rst/ (the form antsibull-docs and the Ansible docsite
   read; shipped in the tarball). docs/*.md stay the source: edit those, and run this.
2. `antsibull-docs lint-collection-docs --plugin-docs` on a copy of the collection: every
   M()/O()/RV() reference, every doc and every extra doc is checked.
3. `antsibull-docs sphinx-init` + the build it generates, into build/docs/site/, with no
   intersphinx (no network): the only warnings tolerated are references to labels of the
   Ansible core documentation, which intersphinx would resolve online; any other warning
   fails the build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCS = REPO / 'docs'
DOCSITE = DOCS / 'docsite'
RST = DOCSITE / 'rst'
BUILD = REPO / 'build' / 'docs'
LABEL_PREFIX = 'ansible_collections.savepoint.virt.docsite.'
SOURCE_URL = 'https://github.com/savepoint/virt/blob/main/'
# Labels of the Ansible core docs that antsibull-docs' templates link to; offline there is
# no intersphinx inventory to resolve them, so (and only so) they are undefined.
CORE_LABELS = {'ansible_configuration_settings', 'common_return_values',
               'action_plugins'}  # the attributes table links core's action-plugin docs
#: modules of ansible.builtin that our docs name with M(): their pages live in the core docs
CORE_MODULE_LABEL = re.compile(r'ansible_collections\.ansible\.builtin\.[a-z_]+_module')
OFFLINE_CONF = '''
# --- savepoint.virt (tests/scripts/docs.py): offline build -------------------------------
# No intersphinx: the build never reaches the network. References into the core Ansible
# docs stay unresolved; tests/scripts/docs.py tolerates exactly those warnings.
project = 'savepoint.virt'
title = 'savepoint.virt collection documentation'
html_short_title = 'savepoint.virt'
intersphinx_mapping = {}
'''


def run(cmd: List[str], cwd: Path, env: Dict[str, str]) -> str:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=str(cwd), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit('docs: %s failed (rc %s):\n%s%s' % (' '.join(cmd), proc.returncode, proc.stdout, proc.stderr))
    if os.environ.get('SAVEPOINT_DOCS_TIMES'):
        print('docs: %.1f s  %s' % (time.monotonic() - started, ' '.join(cmd[:3])), flush=True)
    return proc.stdout + proc.stderr


def guides() -> List[str]:
    """The document names docs/docsite/extra-docs.yml lists (each docs/<name>.md)."""
    index = yaml.safe_load((DOCSITE / 'extra-docs.yml').read_text())
    names = []
    for section in index['sections']:
        for entry in section['toctree']:
            names.append(entry if isinstance(entry, str) else entry['ref'])
    missing = [n for n in names if not (DOCS / (n + '.md')).is_file()]
    if missing:
        sys.exit('docs: docs/docsite/extra-docs.yml lists %s but docs/ has no such .md' % missing)
    return names


def label(name: str) -> str:
    return LABEL_PREFIX + name.replace('-', '_')


def to_rst(name: str, names: List[str]) -> str:
    import pypandoc  # tests/requirements.txt: pypandoc-binary (pandoc itself, from the index)

    text = (DOCS / (name + '.md')).read_text()

    def link(match: 're.Match[str]') -> str:
        target = match.group(1)
        if re.match(r'[a-z]+:|#', target):
            return match.group(0)
        path = target.split('#', 1)[0]
        repo_path = os.path.normpath(os.path.join('docs', path))
        doc = re.fullmatch(r'docs/([A-Za-z0-9_-]+)\.md', repo_path)
        if doc and doc.group(1) in names:
            return '](sp-doc:%s)' % doc.group(1)
        return '](%s%s)' % (SOURCE_URL, repo_path)  # any other file of the repository

    text = re.sub(r'\]\(([^)\s]+)\)', link, text)
    body = pypandoc.convert_text(text, 'rst', format='gfm-gfm_auto_identifiers', extra_args=['--wrap=none'])
    # links to another guide become references to its label
    body = re.sub(r'`([^`<]+?) <sp-doc:([A-Za-z0-9_-]+)>`__?',
                  lambda m: ':ref:`%s <%s>`' % (m.group(1).strip(), label(m.group(2))), body)
    return ('..\n  Generated from docs/%s.md by tests/scripts/docs.py (make docs):\n'
            '  edit the Markdown, then run make docs.\n\n.. _%s:\n\n%s'
            % (name, label(name), body.rstrip() + '\n'))


def convert() -> None:
    names = guides()
    RST.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = RST / (name + '.rst')
        content = to_rst(name, names)
        if not target.exists() or target.read_text() != content:
            target.write_text(content)
            print('docs: regenerated %s' % target.relative_to(REPO), flush=True)
    for stale in RST.glob('*.rst'):
        if stale.stem not in names and 'Generated from docs/' in stale.read_text():
            stale.unlink()
            print('docs: removed %s (no longer in extra-docs.yml)' % stale.relative_to(REPO), flush=True)


def build() -> None:
    env = dict(os.environ, PATH='%s:%s' % (BIN, os.environ.get('PATH', '')))
    env.update(SAVEPOINT_COPY_ROOT=str(BUILD / 'collection'))
    copy = Path(run(['bash', str(REPO / 'tests/scripts/collection_copy.sh')], REPO, env).strip().splitlines()[-1])
    env['ANSIBLE_COLLECTIONS_PATH'] = str(BUILD / 'collection')
    env['ANSIBLE_COLLECTIONS_SCAN_SYS_PATH'] = 'false'
    run([str(BIN / 'antsibull-docs'), 'lint-collection-docs', '--plugin-docs', '.'], copy, env)
    print('docs: antsibull-docs lint-collection-docs --plugin-docs: clean', flush=True)

    site = BUILD / 'site'
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(mode=0o755, parents=True)  # sphinx-init wants it owned by us, writable only by us
    os.chmod(site, 0o755)
    run([str(BIN / 'antsibull-docs'), 'sphinx-init', '--use-current', '--squash-hierarchy',
         'savepoint.virt', '--dest-dir', str(site)], REPO, env)
    with open(site / 'conf.py', 'a') as conf:
        conf.write(OFFLINE_CONF)
    (site / 'rst').mkdir(mode=0o755, exist_ok=True)
    os.chmod(site / 'rst', 0o755)
    run([str(BIN / 'antsibull-docs'), '--config-file', 'antsibull-docs.cfg', 'collection',
         '--cleanup', 'everything', '--use-current', '--squash-hierarchy', '--dest-dir', 'rst',
         'savepoint.virt'], site, env)
    warnings_file = site / 'warnings.txt'
    run([str(BIN / 'sphinx-build'), '-M', 'html', 'rst', 'build', '-c', '.', '--keep-going',
         '-q', '-w', str(warnings_file)], site, env)
    warnings = [w for w in warnings_file.read_text().splitlines() if w.strip()]
    tolerated, other = [], []
    for line in warnings:
        found = re.search(r"undefined label: '([^']+)'", line)
        core = found and (found.group(1) in CORE_LABELS or CORE_MODULE_LABEL.fullmatch(found.group(1)))
        (tolerated if core else other).append(line)
    if other:
        sys.exit('docs: the site build warned (only references to the core Ansible docs are '
                 'tolerated offline):\n  ' + '\n  '.join(other))
    index = site / 'build' / 'html' / 'index.html'
    if not index.is_file():
        sys.exit('docs: no %s after the build' % index)
    for name in guides():
        page = site / 'build' / 'html' / 'docsite' / (name + '.html')
        if not page.is_file():
            sys.exit('docs: guide %s was not built (%s missing)' % (name, page))
    print('docs: site built in %s (%d tolerated warnings: core-docs labels unresolved offline)'
          % (index.relative_to(REPO), len(tolerated)))


def main() -> None:
    convert()
    if '--convert-only' not in sys.argv:
        build()


if __name__ == '__main__':
    main()

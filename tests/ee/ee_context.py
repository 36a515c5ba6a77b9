"""Build the ansible-builder contexts of the example execution environments, offline.

    python tests/ee/ee_context.py [OUT]        # default OUT: build/ee  (what `make ee-context` runs)

For every definition in docs/awx/ee/*.yml:
  OUT/<name>/context/        `ansible-builder create` output (Containerfile, _build/...)
  OUT/<name>/collections/    the collection installed from its tarball the way the EE's galaxy
                             stage does it (ansible-galaxy collection install -r requirements.yml)
  OUT/<name>/requirements.txt, bindep.txt
                             what the builder stage's `introspect` resolves, with the
                             definition's excludes (run with the context's own introspect.py)
  OUT/<name>/summary.json    those, plus the bindep packages per platform: `run` (final image)
                             and `compile` (builder stage only)
No container engine is needed; `ansible-builder build` is the step this cannot do here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import yaml
from bindep.depends import Depends

REPO = Path(__file__).resolve().parents[2]
EE_DIR = REPO / 'docs' / 'awx' / 'ee'
BIN = Path(sys.executable).parent
PLATFORMS = ('dpkg', 'rpm')


def run(cmd: List[str], cwd: Path) -> str:
    # an installed copy elsewhere on ANSIBLE_COLLECTIONS_PATH would make `install` a no-op
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    proc = subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError('%s failed (rc %d):\n%s\n%s' % (' '.join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def build_tarball(out: Path) -> Path:
    dist = out / 'dist'
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    run([str(BIN / 'ansible-galaxy'), 'collection', 'build', '--force', '--output-path', str(dist), str(REPO)], REPO)
    (tarball,) = dist.glob('savepoint-virt-*.tar.gz')
    return tarball


def bindep_packages(bindep_file: Path) -> Dict[str, Dict[str, List[str]]]:
    """Packages bindep installs per platform: `run` = default profile (the EE's final image),
    `compile` = what only the builder stage adds (as ansible-builder's assemble script does)."""
    if not bindep_file.exists():
        return {p: {'run': [], 'compile': []} for p in PLATFORMS}
    deps = Depends(bindep_file.read_text())
    found = {}
    for platform in PLATFORMS:
        runtime = [r[0] for r in deps.active_rules(['default', 'platform:' + platform])]
        compiled = [r[0] for r in deps.active_rules(['compile', 'platform:' + platform]) if r[0] not in runtime]
        found[platform] = {'run': runtime, 'compile': compiled}
    return found


def make_context(definition: Path, tarball: Path, out: Path) -> dict:
    name = definition.stem
    work = out / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ee = yaml.safe_load(definition.read_text())
    wanted = [c['name'] for c in ee['dependencies']['galaxy']['collections']]
    expected = 'collections/%s' % tarball.name
    if wanted != [expected]:
        raise RuntimeError('%s installs %s, but the built tarball is %s: update the definition'
                           % (definition, wanted, expected))
    shutil.copy(definition, work / definition.name)
    shutil.copy(tarball, work / tarball.name)
    context = work / 'context'
    run([str(BIN / 'ansible-builder'), 'create', '-f', definition.name, '--context', str(context),
         '--output-filename', 'Containerfile'], work)
    build = context / '_build'
    collections = work / 'collections'
    # the galaxy stage: COPY _build /build; WORKDIR /build; ansible-galaxy collection install -r requirements.yml
    run([str(BIN / 'ansible-galaxy'), 'collection', 'install', '--force', '-r', 'requirements.yml', '-p', str(collections)],
        build)
    # the builder stage: introspect.py introspect --exclude-...=... --write-pip --write-bindep
    cmd = [sys.executable, str(build / 'scripts' / 'introspect.py'), 'introspect', str(collections),
           '--write-pip', str(work / 'requirements.txt'), '--write-bindep', str(work / 'bindep.txt')]
    for option, filename in (('--exclude-pip-reqs', 'exclude-requirements.txt'),
                             ('--exclude-bindep-reqs', 'exclude-bindep.txt')):
        if (build / filename).exists():
            cmd += [option, str(build / filename)]
    run(cmd, work)
    python = [line.split('#')[0].strip() for line in _lines(work / 'requirements.txt')]
    summary = {
        'definition': str(definition.relative_to(REPO)),
        'containerfile': str((context / 'Containerfile').relative_to(out)),
        'python': python,
        'bindep_lines': [line.split('#')[0].strip() for line in _lines(work / 'bindep.txt')],
        'system': bindep_packages(work / 'bindep.txt'),
    }
    (work / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    return summary


def _lines(path: Path) -> List[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith('#')]


def main(out: Path) -> Dict[str, dict]:
    out.mkdir(parents=True, exist_ok=True)
    tarball = build_tarball(out)
    results = {d.stem: make_context(d, tarball, out) for d in sorted(EE_DIR.glob('*.yml'))}
    for name, summary in results.items():
        print('%s: python %s' % (name, ', '.join(summary['python']) or '-'))
        for platform, packages in summary['system'].items():
            print('  %s run: %s; compile: %s' % (platform, ', '.join(packages['run']) or '-',
                                                 ', '.join(packages['compile']) or '-'))
    print('contexts in %s' % out)
    return results


if __name__ == '__main__':
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO / 'build' / 'ee')

"""`make ee-context`: the generated ansible-builder contexts list every dependency, and the
single-provider EEs leave libvirt (and its compiler tool chain) out. Offline, ~3 s."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ee_context  # noqa: E402

REPO = ee_context.REPO


# ansible-galaxy build + ansible-builder create (about 20 s): in make test, not test-fast
pytestmark = pytest.mark.playbook


def req_lines(path: Path) -> list:
    """Requirement lines of a pip file, following -r like pip and ansible-builder do."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split('#')[0].strip()
        if not line:
            continue
        if line.startswith('-r'):
            found += req_lines(path.parent / line.split(None, 1)[1])
        else:
            found.append(line)
    return found


def bindep_lines() -> list:
    return [line.split('#')[0].strip() for line in (REPO / 'bindep.txt').read_text().splitlines()
            if line.split('#')[0].strip()]


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp('ee')
    return out, ee_context.main(out)


@pytest.fixture(scope='module')
def contexts(built):
    return built[1]


PROVIDERS = {'libvirt': 'libvirt-python', 'vmware': 'pyvmomi', 'openstack': 'openstacksdk'}


def test_requirements_txt_is_exactly_the_three_provider_files():
    union = []
    for provider in PROVIDERS:
        lines = req_lines(REPO / ('requirements-%s.txt' % provider))
        assert lines and all(line.startswith(PROVIDERS[provider]) for line in lines), (provider, lines)
        union += lines
    assert req_lines(REPO / 'requirements.txt') == union


def test_all_provider_ee_lists_every_python_and_system_dependency(contexts):
    ee = contexts['execution-environment']
    assert ee['python'] == req_lines(REPO / 'requirements.txt')
    assert ee['bindep_lines'] == bindep_lines()
    dpkg, rpm = ee['system']['dpkg'], ee['system']['rpm']
    # run time: the client library libvirt-python links against and ssh for qemu+ssh://
    assert dpkg['run'] == ['libvirt0', 'openssh-client']
    assert rpm['run'] == ['libvirt-libs', 'openssh-clients']
    # compile only: never in the final image
    assert set(dpkg['compile']) == {'libvirt-dev', 'pkg-config', 'gcc', 'python3-dev'}
    assert set(rpm['compile']) == {'libvirt-devel', 'pkgconf-pkg-config', 'gcc', 'python3-devel'}
    assert not any(p.endswith(('-dev', '-devel')) or p == 'gcc' for p in dpkg['run'] + rpm['run'])


@pytest.mark.parametrize('name,provider', [('execution-environment-vmware', 'vmware'),
                                           ('execution-environment-openstack', 'openstack')])
def test_single_provider_ee_builds_no_libvirt(contexts, name, provider):
    ee = contexts[name]
    assert ee['python'] == req_lines(REPO / ('requirements-%s.txt' % provider))
    assert not any('libvirt' in line for line in ee['python'])
    # pure-Python / binary wheels: nothing from bindep at all, so no compiler in the builder stage
    assert ee['bindep_lines'] == []
    assert all(not v['run'] and not v['compile'] for v in ee['system'].values())


def test_containerfile_runs_the_introspection_that_was_checked(built):
    out, contexts = built
    assert set(contexts) == {'execution-environment', 'execution-environment-vmware',
                             'execution-environment-openstack'}
    for name in contexts:
        text = (out / name / 'context' / 'Containerfile').read_text()
        assert re.search(r'introspect\.py introspect .*--write-bindep=.*--write-pip=', text), name
        assert 'install-from-bindep' in text  # the final stage installs the run-time list
        assert (out / name / 'context' / '_build' / 'requirements.yml').exists()
        assert (out / name / 'collections' / 'ansible_collections' / 'savepoint' / 'virt' /
                'meta' / 'execution-environment.yml').exists()

"""Secrets suite against the shared OpenStack stack: a wrong password and a wrong token, with
userinfo in the auth_url, through clouds.yaml and the auth option. Keystone answers 401 and
keystoneauth's exception text holds the request URL: nothing of it may reach any output.

Run under the stack's lock: flock /tmp/savepoint-openstack.lock .venv/bin/python -m pytest -m openstack ...
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
import yaml

from safety.secrets_table import openstack_cases
from safety.test_secrets import OUTPUTS, assert_clean, run_case

pytestmark = pytest.mark.openstack


@pytest.fixture(scope='module')
def keystone_port():
    from contract.harness_openstack import shared_stack
    stack = shared_stack()
    auth_url = yaml.safe_load(stack.clouds_yaml.read_text())['clouds']['stack-demo']['auth']['auth_url']
    return urlparse(auth_url).port


@pytest.mark.parametrize('output', OUTPUTS)
@pytest.mark.parametrize('index', range(2))
def test_no_secret_in_output_live_stack(keystone_port, index, output, tmp_path):
    case = [c for c in openstack_cases(keystone_port) if c.needs == 'stack'][index]
    run = run_case(case, tmp_path, output)
    assert_clean(run.output, case, '%s (%s)' % (output, case.id))
    if output == 'json':
        assert run.result().get('error') and run.result().get('msg'), run.result()

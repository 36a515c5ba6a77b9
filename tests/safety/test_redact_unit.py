"""_redact: pure text and structure redaction (no services)."""

from __future__ import annotations

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._redact import (
    MASK, mask_uri, redact, redact_text, secrets_in, uri_secrets,
)

PASSWORD = 'S3cr3t-pa55'


@pytest.mark.parametrize('text', [
    "cannot connect to libvirt at 'qemu+tcp://admin:%s@10.0.0.1/system': refused" % PASSWORD,
    'qemu+tls://admin:%s@host:16514/system?no_verify=1' % PASSWORD,
    'https://user:%s@keystone.example:5000/v3/auth/tokens' % PASSWORD,
    'https://user:p@ss%s@keystone.example/v3' % PASSWORD,          # unencoded '@' in the password
    "{'auth_url': 'http://u:%s@127.0.0.1:5000/v3'}" % PASSWORD,
    'password=%s&user=admin' % PASSWORD,
    'password: %s' % PASSWORD,
    '{"password": "%s", "username": "admin"}' % PASSWORD,
    "{'password': '%s'}" % PASSWORD,
    'application_credential_secret=%s' % PASSWORD,
    'X-Auth-Token: %s' % PASSWORD,
    'Authorization: Bearer %s' % PASSWORD,
    'vmware_soap_session="%s"' % PASSWORD,
])
def test_secret_masked(text):
    out = redact_text(text)
    assert PASSWORD not in out
    assert 'S3cr3t' not in out
    assert MASK in out or '***@' in out


def test_userinfo_masked_whole_and_host_kept():
    assert mask_uri('qemu+ssh://root@kvm1/system') == 'qemu+ssh://***@kvm1/system'
    assert mask_uri('https://TOKEN123@git.example/x') == 'https://***@git.example/x'
    assert mask_uri('qemu:///system') == 'qemu:///system'
    assert mask_uri('mail me at a@b.c, see http://h/x') == 'mail me at a@b.c, see http://h/x'


@pytest.mark.parametrize('text', [
    'password must not be empty', 'option password: missing', 'auth_type: token',
    "created snapshot 'before-upgrade' of guest 'web1'", 'keep_last=3', 'token expired, log in again',
])
def test_prose_untouched(text):
    assert redact_text(text) == text


def test_known_secrets_masked_anywhere():
    out = redact_text('login failed for admin with hunter22 at host', ['hunter22', 'ab'])
    assert out == 'login failed for admin with %s at host' % MASK


def test_uri_secrets_password_raw_and_decoded():
    found = uri_secrets('qemu+tcp://bob:p%40ss-word@h/system')
    assert 'p%40ss-word' in found and 'p@ss-word' in found and 'bob:p%40ss-word' in found
    assert uri_secrets('qemu+ssh://root@h/system') == []


def test_redact_structure():
    result = {
        'msg': "cannot connect to 'qemu+tcp://a:%s@h/system'" % PASSWORD,
        'error_details': {'uri': 'qemu+tcp://a:%s@h/system' % PASSWORD, 'libvirt_code': 38},
        'results': [{'provider_message': 'X-Auth-Token: %s' % PASSWORD, 'password': PASSWORD}],
        'changed': False, 'count': 3, 'tuple': ('x', PASSWORD),
    }
    out = redact(result, [PASSWORD])
    assert PASSWORD not in repr(out)
    assert out['changed'] is False and out['count'] == 3 and out['error_details']['libvirt_code'] == 38
    assert out['results'][0]['password'] == MASK
    assert isinstance(out['tuple'], tuple)
    assert result['results'][0]['password'] == PASSWORD  # a copy: the input is not changed


def test_secrets_in_options():
    params = {'uri': 'qemu+tcp://u:%s@h/system' % PASSWORD, 'guests': [{'name': 'x'}], 'timeout': 5}
    assert PASSWORD in secrets_in(params)


def test_the_quick_check_skips_no_text_the_patterns_would_change(monkeypatch):
    """_MAYBE_SECRET lets a text skip the patterns: for every secret key, header and URI shape, in any case, the
    result must be the same as with the patterns always run."""
    from ansible_collections.savepoint.virt.plugins.module_utils import _redact as module
    texts = ['snapshot pre-patch of web1 at 2026-12-01T10:00:00Z', 'vm-42', '', 'ftp://u:p@h/x',
             'Proxy-Authorization: Basic abc', 'Set-Cookie: x=1', 'X-Subject-Token: t0k', 'X-Auth-Key: k']
    for key in module.SECRET_KEYS:
        for shape in ('%s=v4lue', '%s: v4lue', '"%s": "v4lue"', 'my_%s=v4lue', '%s-x = v4lue'):
            for case in (str.lower, str.upper, str.title):
                texts.append(shape % case(key))
    full = [module._redact_text(t, []) for t in texts]  # pylint: disable=protected-access
    monkeypatch.setattr(module, '_MAYBE_SECRET', __import__('re').compile(''))   # matches every text
    assert [module._redact_text(t, []) for t in texts] == full  # pylint: disable=protected-access
    assert sum(1 for t, f in zip(texts, full) if t != f) > 3 * len(module.SECRET_KEYS)   # most were masked


def test_a_text_repeated_in_a_result_is_redacted_alike_and_a_str_subclass_keeps_its_own_object():
    class Tagged(str):
        """As Ansible's tagged strings: equal to a plain text, but another object with its own tags."""
    secret_url = 'https://admin:hunter22@vc.example/sdk'
    tagged = Tagged('DC0_H0_VM0')
    result = redact({'results': [{'name': 'DC0_H0_VM0', 'msg': secret_url}, {'name': tagged, 'msg': secret_url}]})
    first, second = result['results']
    assert first['msg'] == second['msg'] == 'https://***@vc.example/sdk'
    assert second['name'] is tagged and type(first['name']) is str  # pylint: disable=unidiomatic-typecheck  # exactly str

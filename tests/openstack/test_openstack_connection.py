"""How the connection options meet clouds.yaml, against the real Keystone of the local stack:
an AWX-shaped clouds.yaml (one cloud, OS_CLIENT_CONFIG_FILE, no OS_CLOUD), and TLS verification
decided by clouds.yaml unless validate_certs is given -- through a TLS forwarder on 127.0.0.1
(self-signed certificate) in front of Keystone."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from pathlib import Path

import pytest
import yaml

from ansible_collections.savepoint.virt.plugins.module_utils._backends.openstack import OpenStackBackend
from ansible_collections.savepoint.virt.plugins.module_utils._errors import AuthenticationError, CertificateError
from ansible_collections.savepoint.virt.plugins.module_utils._model import GuestRef

pytestmark = pytest.mark.openstack

SECRET = 'Tls-pw-never-printed'


def _all_text(exc):
    return ' '.join(str(x) for x in (exc.msg, exc.provider_message, exc.details, exc.to_result()))


def _demo_cloud(stack):
    return yaml.safe_load(Path(stack.clouds_yaml).read_text())['clouds']['stack-demo']


@pytest.fixture
def awx_env(monkeypatch, tmp_path, stack):
    """Like AWX's OpenStack credential: OS_CLIENT_CONFIG_FILE, a single cloud named devstack, no OS_CLOUD."""
    import os
    for key in list(os.environ):
        if key.startswith('OS_'):
            monkeypatch.delenv(key)

    def write(**changes):
        cloud = _demo_cloud(stack)
        auth = dict(cloud['auth'], **changes.pop('auth', {}))
        cloud = dict(cloud, auth=auth, **changes)
        path = tmp_path / ('clouds-%d.yaml' % len(list(tmp_path.iterdir())))
        path.write_text(yaml.safe_dump({'clouds': {'devstack': cloud}}))
        monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(path))
        return path
    return write


def test_a_single_cloud_clouds_yaml_without_os_cloud_is_used_and_named(awx_env, servers):
    server = servers.boot()
    awx_env()
    with OpenStackBackend({}) as backend:
        assert backend.find_guest(GuestRef(uuid=server.id)).name == server.name
    awx_env(auth={'password': SECRET})
    with pytest.raises(AuthenticationError) as err:
        OpenStackBackend({}).connect()
    assert "cloud 'devstack' (the only cloud in clouds.yaml)" in err.value.msg, err.value.msg
    assert 'OS_*' not in err.value.msg and SECRET not in _all_text(err.value)


class TlsForwarder:
    """TLS on 127.0.0.1:<free port>, plain TCP to the upstream port (Keystone)."""

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        self.upstream = upstream_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client = self.listener.accept()[0]
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):  # the client refused our certificate: what a test may want
            client.close()
            return
        upstream = socket.create_connection(('127.0.0.1', self.upstream))

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
        pump(tls, upstream)

    def close(self) -> None:
        self.stopped = True
        self.listener.close()


def _self_signed(tmp_path: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'savepoint-test')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / 'tls.pem', tmp_path / 'tls.key'
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_keystone(tmp_path, stack):
    from urllib.parse import urlsplit
    upstream = urlsplit(_demo_cloud(stack)['auth']['auth_url']).port or 5000
    cert, key = _self_signed(tmp_path)
    forwarder = TlsForwarder(upstream, cert, key)
    yield forwarder, cert
    forwarder.close()


def test_verify_comes_from_clouds_yaml_unless_validate_certs_is_given(awx_env, tls_keystone):
    forwarder, cert = tls_keystone
    # userinfo in the URL (it happens in clouds.yaml files): never in a message
    url = 'https://someone:%s@127.0.0.1:%d/v3' % (SECRET, forwarder.port)
    awx_env(auth={'auth_url': url}, verify=False)
    with OpenStackBackend({}) as backend:  # clouds.yaml says verify: false -> the self-signed endpoint is fine
        assert backend.conn.current_project_id
    with pytest.raises(CertificateError) as err:
        OpenStackBackend({'validate_certs': True}).connect()  # given: it overrides clouds.yaml
    assert err.value.kind == 'certificate_verify_failed'
    assert 'https://127.0.0.1:%d/v3' % forwarder.port in err.value.msg, err.value.msg
    assert SECRET not in _all_text(err.value) and 'someone' not in _all_text(err.value)

    awx_env(auth={'auth_url': url})  # clouds.yaml says nothing: openstacksdk verifies
    with pytest.raises(CertificateError):
        OpenStackBackend({}).connect()
    with OpenStackBackend({'validate_certs': False}) as backend:
        assert backend.conn.current_project_id
    with OpenStackBackend({'ca_cert': str(cert)}) as backend:  # verified against our own CA
        assert backend.conn.current_project_id

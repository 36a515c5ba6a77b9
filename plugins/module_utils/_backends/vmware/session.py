# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vSphere session: connection options, login/logout, calls that map faults, the property collector."""

from __future__ import annotations

import os
import ssl
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from ..._backend import SnapshotBackend
from ..._errors import (
    AuthenticationError, CertificateError, ConnectionFailedError, GuestNotFoundError, InvalidRequestError,
    MissingLibraryError, SavepointError, SnapshotNotFoundError,
)
from . import sdk
from .sdk import NETWORK_ERRORS, fault_message, load_pyvmomi, parse_bool, translate
from .fast_props import property_collector
from .tasks import TaskWaiter

#: socket timeout of every SOAP call (a vCenter that stops answering must not hang a play)
HTTP_TIMEOUT = 60


def _port(value: Any, name: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise InvalidRequestError('%s must be a number, not %r' % (name, value))
    if not 1 <= port <= 65535:
        # urllib would wrap 70000 to another port silently, and send the credentials there.
        raise InvalidRequestError('%s must be between 1 and 65535, not %d' % (name, port))
    return port


def _proxy(conn: Dict[str, Any], env: Mapping[str, str]) -> Tuple[Optional[str], int]:
    """proxy_host/proxy_port, option then VMWARE_PROXY_HOST/VMWARE_PROXY_PORT; a port without a host is refused."""
    host = conn.get('proxy_host') or env.get('VMWARE_PROXY_HOST') or None
    port = conn.get('proxy_port') if conn.get('proxy_port') not in (None, '') else env.get('VMWARE_PROXY_PORT')
    if not host:
        if port not in (None, ''):
            raise InvalidRequestError('proxy_port needs proxy_host (or VMWARE_PROXY_HOST)')
        return None, 0
    if port in (None, ''):
        raise InvalidRequestError('proxy_host needs proxy_port (or VMWARE_PROXY_PORT)')
    return host, _port(port, 'proxy_port')


class VmwareSession(SnapshotBackend):
    """Holds the service instance; every SOAP call goes through ``_call`` (or a task start)."""

    connection_options = {
        'hostname': {'type': 'str', 'env': ['VMWARE_HOST'],
                     'description': 'vCenter or ESXi host name or address.'},
        # The aliases of community.vmware and vmware.vmware, so their tasks move over unchanged.
        'username': {'type': 'str', 'env': ['VMWARE_USER'], 'aliases': ['user', 'admin'],
                     'description': 'vSphere user name.'},
        'password': {'type': 'str', 'env': ['VMWARE_PASSWORD'], 'no_log': True, 'aliases': ['pass', 'pwd'],
                     'description': 'Password of O(username).'},
        'port': {'type': 'int', 'default': 443, 'env': ['VMWARE_PORT'], 'description': 'HTTPS port.'},
        # No argument-spec default or env fallback: the backend resolves option > VMWARE_VALIDATE_CERTS > true
        # itself, so that in the neutral modules (which share validate_certs with OpenStack) the VMware
        # variable can never switch verification off for another provider.
        'validate_certs': {'type': 'bool',
                           'description': 'Verify the server certificate (VMWARE_VALIDATE_CERTS, then true).'},
        'proxy_host': {'type': 'str', 'env': ['VMWARE_PROXY_HOST'],
                       'description': 'HTTP proxy (CONNECT) to reach vSphere through.'},
        'proxy_port': {'type': 'int', 'env': ['VMWARE_PROXY_PORT'], 'description': 'Port of O(proxy_host).'},
        'datacenter': {'type': 'str', 'description': 'Look guests up in this datacenter only.'},
        'honor_capability_flags': {'type': 'bool', 'default': True,
                                   'description': "Refuse memory/quiesce when the VM's capability flags say no."},
    }

    def __init__(self, connection: Dict[str, Any]) -> None:
        super().__init__(connection)
        load_pyvmomi()
        conn = self.connection
        env = os.environ
        self.hostname = conn.get('hostname') or env.get('VMWARE_HOST')
        self.username = conn.get('username') or env.get('VMWARE_USER')
        self.password = conn.get('password') or env.get('VMWARE_PASSWORD')
        port = conn.get('port') if conn.get('port') not in (None, '') else env.get('VMWARE_PORT') or 443
        self.port = _port(port, 'port')
        validate = conn.get('validate_certs')
        if validate is None:
            validate = env.get('VMWARE_VALIDATE_CERTS', True)
        self.validate_certs = parse_bool(validate, 'validate_certs')
        self.proxy_host, self.proxy_port = _proxy(conn, env)
        self.datacenter = conn.get('datacenter') or None
        honor = conn.get('honor_capability_flags')
        self.honor_capability_flags = True if honor is None else parse_bool(honor, 'honor_capability_flags')
        self.si: Any = None
        self.content: Any = None
        self._dc: Any = None
        self._props: Dict[str, Dict[str, Any]] = {}
        self._static: Dict[str, Dict[str, Any]] = {}  # moid -> its sdk.STATIC_PROPS as the lookup read them
        self._no_find_all = False
        self._broken: Optional[str] = None
        self._collector: Any = None   # the session's property collector (fast_props), made at connect()

    # -- session -------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        via = ' (through proxy %s:%d)' % (self.proxy_host, self.proxy_port) if self.proxy_host else ''
        return '%s:%d%s' % (self.hostname, self.port, via)

    def connect(self) -> None:
        if not load_pyvmomi():
            raise MissingLibraryError('the vmware provider needs pyVmomi (pip install pyvmomi) where the module runs',
                                      provider_message=sdk.PYVMOMI_IMPORT_ERROR)
        missing = [name for name, value in (('hostname', self.hostname), ('username', self.username),
                                            ('password', self.password)) if not value]
        if missing:
            raise InvalidRequestError('the vmware provider needs %s (or the VMWARE_HOST, VMWARE_USER and '
                                      'VMWARE_PASSWORD environment variables)' % ', '.join(missing))
        if self.validate_certs:
            # pyVmomi silently skips verification for localhost unless it is given a context.
            context = ssl.create_default_context()
        else:
            context = ssl._create_unverified_context()  # pylint: disable=protected-access
        try:
            proxy = {'httpProxyHost': self.proxy_host, 'httpProxyPort': self.proxy_port} if self.proxy_host else {}
            self.si = sdk.SmartConnect(host=self.hostname, port=self.port, user=self.username, pwd=self.password,
                                       sslContext=context, httpConnectionTimeout=HTTP_TIMEOUT, **proxy)
            self.content = self.si.RetrieveContent()
            self._collector = property_collector(self.content, self._stub())
        except ssl.SSLCertVerificationError as exc:
            raise CertificateError(
                'the certificate of vSphere server %s could not be verified (%s); install its CA or set '
                'validate_certs: false' % (self.endpoint, exc.verify_message or exc.reason),
                provider_message=str(exc), details={'hostname': self.hostname, 'port': self.port})
        except ssl.SSLError as exc:
            raise CertificateError('TLS with vSphere server %s failed: %s' % (self.endpoint, exc.reason or exc),
                                   provider_message=str(exc), details={'hostname': self.hostname, 'port': self.port})
        except sdk.vim.fault.InvalidLogin as exc:
            # Never the password, nor anything derived from it.
            raise AuthenticationError("vSphere server %s refused the login of user '%s': wrong user name or "
                                      "password" % (self.endpoint, self.username),
                                      provider_message=fault_message(exc),
                                      details={'hostname': self.hostname, 'port': self.port})
        except sdk.vmodl.MethodFault as exc:
            raise translate(exc, 'logging in to vSphere server %s' % self.endpoint)
        except NETWORK_ERRORS as exc:
            raise ConnectionFailedError('cannot connect to vSphere server %s: %s' % (self.endpoint, exc),
                                        provider_message=str(exc),
                                        details={'hostname': self.hostname, 'port': self.port})
        except Exception as exc:  # pyVmomi raises plain Exception for unusable endpoints
            raise ConnectionFailedError('cannot connect to vSphere server %s: %s' % (self.endpoint, exc),
                                        provider_message=str(exc),
                                        details={'hostname': self.hostname, 'port': self.port})
        if self.datacenter:
            self._dc = self._call(lambda: self.content.searchIndex.FindByInventoryPath(self.datacenter.strip('/')),
                                  "finding datacenter '%s'" % self.datacenter)
            if not isinstance(self._dc, sdk.vim.Datacenter):
                self.close()
                raise GuestNotFoundError("vSphere server %s has no datacenter '%s'" % (self.endpoint, self.datacenter))

    def close(self) -> None:
        if self.si is None:
            return
        try:
            if self._broken is None and self.content is not None:
                # Log out (vCenter limits sessions); a broken connection is only dropped, not waited on again.
                self.content.sessionManager.Logout()
        except Exception:  # a dead session must not hide the real error
            pass
        finally:
            try:
                self._stub().DropConnections()
            except Exception:  # nothing left to release
                pass
            self.si = None

    def _call(self, fn: Callable[[], Any], doing: str,
              not_found: Callable[..., SavepointError] = SnapshotNotFoundError) -> Any:
        if self._broken is not None:
            raise ConnectionFailedError('%s: not tried, the connection to vSphere broke earlier in this task: %s'
                                        % (doing, self._broken), provider_message=self._broken)
        try:
            return fn()
        except NETWORK_ERRORS as exc:
            self._broken = fault_message(exc)
            raise translate(exc, doing, not_found)
        except Exception as exc:  # every fault and network error becomes an engine error
            raise translate(exc, doing, not_found)

    # -- property collector ------------------------------------------------------
    def _retrieve(self, objects: Iterable[Any], obj_type: Any, paths: List[str],
                  doing: str) -> Dict[str, Dict[str, Any]]:
        """One RetrievePropertiesEx for many objects: moid -> {path: value}."""
        pcq = sdk.vmodl.query.PropertyCollector
        objects = list(objects)
        if not objects:
            return {}
        spec = pcq.FilterSpec(objectSet=[pcq.ObjectSpec(obj=o, skip=False) for o in objects],
                              propSet=[pcq.PropertySpec(type=obj_type, pathSet=paths)])
        return self._collect(spec, doing)

    @property
    def _static_props(self) -> List[str]:
        """sdk.STATIC_PROPS, without the capability flags where they are not honoured (never looked at)."""
        return sdk.STATIC_PROPS if self.honor_capability_flags else ['name']

    def _read_vms(self, vms: Iterable[Any], doing: str, trees: bool = True, extra: Tuple[str, ...] = (),
                  have_snapshots: bool = False, again: bool = False) -> Dict[str, Dict[str, Any]]:
        """VMs' properties (sdk.RUNTIME_PROPS and the static ones + ``extra``; with ``trees``, their snapshot trees and, for those
        that have one, its file layout): moid -> {path: value}, ``_paths`` naming what was read.
        ``have_snapshots``: the VMs are known to have snapshots (a create just ended), so tree and layout
        are read with the rest in one call. ``again``: VMs this session looked up, whose sdk.STATIC_PROPS
        are taken from that lookup instead of read again (a third of what a read of 1,000 VMs parses)."""
        vms = list(vms)
        known = again and all(vm._moId in self._static for vm in vms)  # pylint: disable=protected-access
        paths = sdk.RUNTIME_PROPS + ([] if known else self._static_props) + list(extra)
        if trees:
            paths += sdk.LAYOUT_PROPS if have_snapshots else sdk.TREE_PROPS
        found = self._retrieve(vms, sdk.vim.VirtualMachine, paths, doing)
        for moid, props in found.items():
            if known:
                props.update(self._static[moid])
            props['_paths'] = frozenset(paths) | frozenset(self._static_props if known else ())
        if trees and not have_snapshots:
            self._read_layouts(found, doing)
        return found

    def _read_layouts(self, found: Dict[str, Dict[str, Any]], doing: str) -> None:
        """The trees of the VMs in ``found`` that have snapshots, again, with their file layouts: one call,
        so that a tree and the sizes of its snapshots are of one moment."""
        owners = [props['_obj'] for props in found.values() if props.get('snapshot') is not None]
        if not owners:
            return
        layouts = self._retrieve(owners, sdk.vim.VirtualMachine, sdk.LAYOUT_PROPS, '%s (snapshot files)' % doing)
        for moid, layout in layouts.items():
            if moid in found:
                found[moid].update({path: layout.get(path) for path in sdk.LAYOUT_PROPS})

    @property
    def _property_collector(self) -> Any:
        """The session's property collector, its retrievals parsed in C (fast_props); the content's own
        where no session was connected (the unit tests' fake contents)."""
        return self._collector if self._collector is not None else self.content.propertyCollector

    def _collect(self, spec: Any, doing: str) -> Dict[str, Dict[str, Any]]:
        pcq = sdk.vmodl.query.PropertyCollector
        pc = self._property_collector
        found: Dict[str, Dict[str, Any]] = {}

        def run() -> None:
            result = pc.RetrievePropertiesEx([spec], pcq.RetrieveOptions())
            while result is not None:
                for item in result.objects or []:
                    found[item.obj._moId] = dict({p.name: p.val for p in item.propSet or []}, _obj=item.obj)
                if not result.token:
                    break
                result = pc.ContinueRetrievePropertiesEx(result.token)

        self._call(run, doing, GuestNotFoundError)
        return found

    def _stub(self) -> Any:
        return self.si._stub  # pylint: disable=protected-access

    def _task_waiter(self) -> TaskWaiter:
        """The task waiter on this session's property collector: bounds the socket's read timeout while it
        waits, and a broken connection it hears of stops this session from starting anything more."""
        def broke(message: str) -> None:
            self._broken = message
        return TaskWaiter(self._property_collector, self._socket_timeout, HTTP_TIMEOUT, broke)

    def _socket_timeout(self, seconds: float) -> None:
        """Best effort: bound the read timeout of the stub's HTTP connections (pyVmomi has no API for it)."""
        try:
            stub = self._stub()
            stub.schemeArgs['timeout'] = seconds
            for conn, _idle in list(stub.pool):
                conn.timeout = seconds
                if conn.sock is not None:
                    conn.sock.settimeout(seconds)
        except (AttributeError, TypeError, OSError):
            pass

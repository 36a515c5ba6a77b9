# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VMware vSphere backend (pyVmomi): snapshots of virtual machines on vCenter or ESXi.

Round trips are what a vSphere task costs, so every lookup is a constant
number of calls whatever the inventory size: SearchIndex for uuid and
inventory path, a direct reference for a moid, and one property-collector
retrieval of names only for a bare name. Tasks are waited for all together
through the property collector (WaitForUpdatesEx), never polled one by one.
"""

from __future__ import annotations

import http.client
import math
import os
import socket
import ssl
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .._backend import SnapshotBackend, pick_one
from .._errors import (
    AuthenticationError, CertificateError, ConnectionFailedError, GuestNotFoundError, InvalidRequestError,
    MissingLibraryError, ProviderError, QuiesceUnavailableError, SavepointError, SnapshotNotFoundError,
    UnsupportedError, WaitTimeoutError,
)
from .._model import Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec, to_iso
from .._ownership import decode_description, encode_description
from .._waiting import Operation, ProgressCallback, WaitPolicy, pending

PYVMOMI_IMPORT_ERROR = None
vim = vmodl = SmartConnect = None


def load_pyvmomi() -> bool:
    """Import pyVmomi on first use, not at module import: the provider-neutral
    modules carry every backend, and a libvirt task should not pay for it."""
    global vim, vmodl, SmartConnect, PYVMOMI_IMPORT_ERROR  # pylint: disable=global-statement
    if vim is not None:
        return True
    try:
        from pyVim.connect import SmartConnect as smart_connect
        from pyVmomi import vim as vim_types, vmodl as vmodl_types
    except ImportError:
        PYVMOMI_IMPORT_ERROR = traceback.format_exc()
        return False
    vim, vmodl, SmartConnect = vim_types, vmodl_types, smart_connect
    return True


#: socket timeout of every SOAP call (a vCenter that stops answering must not hang a play)
HTTP_TIMEOUT = 60
#: longest single WaitForUpdatesEx call; the deadline is checked between calls
MAX_WAIT_SLICE = 10
#: seconds a WaitForUpdatesEx answer may take beyond its maxWaitSeconds before the server counts as gone
WAIT_SOCKET_MARGIN = 5

_POWER = {'poweredOn': 'running', 'poweredOff': 'off', 'suspended': 'suspended'}
_CAPABILITY_FLAGS = ('snapshotOperationsSupported', 'memorySnapshotsSupported', 'quiescedSnapshotsSupported',
                     'revertToSnapshotSupported')
_GUEST_PROPS = ['name', 'runtime.powerState', 'guest.toolsRunningStatus', 'snapshot', 'layoutEx'] + [
    'capability.%s' % flag for flag in _CAPABILITY_FLAGS]
_NETWORK_ERRORS = (OSError, http.client.HTTPException, socket.timeout)

_TRUE = ('1', 'true', 'yes', 'on', 'y', 't')
_FALSE = ('0', 'false', 'no', 'off', 'n', 'f')


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidRequestError('%s must be true or false, not %r' % (name, value))


def fault_message(exc: BaseException) -> str:
    """The provider's own words for a vim/vmodl fault (or any exception)."""
    msg = getattr(exc, 'msg', None)
    if not msg:
        for item in getattr(exc, 'faultMessage', None) or []:
            msg = getattr(item, 'message', None)
            if msg:
                break
    if msg:
        return str(msg)
    if vmodl is not None and isinstance(exc, vmodl.MethodFault):
        return exc.__class__.__name__
    return str(exc) or exc.__class__.__name__


def translate(exc: BaseException, doing: str,
              not_found: Callable[..., SavepointError] = SnapshotNotFoundError) -> SavepointError:
    """A pyVmomi fault or network error as the engine's error, vSphere's message kept."""
    load_pyvmomi()
    if isinstance(exc, SavepointError):
        return exc
    message = fault_message(exc)
    fault = type(exc).__name__
    if vim is not None and isinstance(exc, vmodl.MethodFault):
        fault = exc._wsdlName
        details = {'vsphere_fault': fault}
        if isinstance(exc, (vim.fault.InvalidLogin, vim.fault.NotAuthenticated)):
            return AuthenticationError('%s: the vSphere session was refused: %s' % (doing, message), message,
                                       details)
        if isinstance(exc, (vmodl.fault.ManagedObjectNotFound, vim.fault.NotFound)):
            return not_found('%s: %s' % (doing, message), message, details)
        if isinstance(exc, (vmodl.fault.MethodNotFound, vmodl.fault.NotSupported)):
            return UnsupportedError('%s: this vSphere server does not support it: %s' % (doing, message),
                                    message, details)
        if isinstance(exc, vim.fault.ApplicationQuiesceFault):
            return QuiesceUnavailableError('%s: VMware Tools could not quiesce the guest: %s' % (doing, message),
                                           message, details)
        if isinstance(exc, vim.fault.NoPermission):
            return ProviderError('%s: permission denied (%s)' % (doing, message), message, details)
        return ProviderError('%s failed: %s (%s)' % (doing, message, fault), message, details)
    if isinstance(exc, ssl.SSLError):
        return CertificateError('%s: TLS failed: %s' % (doing, message), message)
    if isinstance(exc, _NETWORK_ERRORS):
        return ConnectionFailedError('%s: lost the connection to vSphere: %s' % (doing, message or fault),
                                     message or fault)
    return ProviderError('%s failed: %s' % (doing, message), message)


class VmwareBackend(SnapshotBackend):
    provider = 'vmware'
    guest_fields = ('name', 'uuid', 'id', 'folder')
    guest_options = ('moid', 'folder')
    connection_options = {
        'hostname': {'type': 'str', 'env': ['VMWARE_HOST'],
                     'description': 'vCenter or ESXi host name or address.'},
        'username': {'type': 'str', 'env': ['VMWARE_USER'], 'description': 'vSphere user name.'},
        'password': {'type': 'str', 'env': ['VMWARE_PASSWORD'], 'no_log': True,
                     'description': 'Password of O(username).'},
        'port': {'type': 'int', 'default': 443, 'env': ['VMWARE_PORT'], 'description': 'HTTPS port.'},
        # No argument-spec default or env fallback: the backend resolves option > VMWARE_VALIDATE_CERTS > true
        # itself, so that in the neutral modules (which share validate_certs with OpenStack) the VMware
        # variable can never switch verification off for another provider.
        'validate_certs': {'type': 'bool',
                           'description': 'Verify the server certificate (VMWARE_VALIDATE_CERTS, then true).'},
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
        try:
            self.port = int(port)
        except (TypeError, ValueError):
            raise InvalidRequestError('port must be a number, not %r' % (port,))
        validate = conn.get('validate_certs')
        if validate is None:
            validate = env.get('VMWARE_VALIDATE_CERTS', True)
        self.validate_certs = _bool(validate, 'validate_certs')
        self.datacenter = conn.get('datacenter') or None
        honor = conn.get('honor_capability_flags')
        self.honor_capability_flags = True if honor is None else _bool(honor, 'honor_capability_flags')
        self.si: Any = None
        self.content: Any = None
        self._dc: Any = None
        self._props: Dict[str, Dict[str, Any]] = {}
        self._no_find_all = False
        self._broken: Optional[str] = None

    # -- session -------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return '%s:%d' % (self.hostname, self.port)

    def connect(self) -> None:
        if not load_pyvmomi():
            raise MissingLibraryError('the vmware provider needs pyVmomi (pip install pyvmomi) where the module runs',
                                      provider_message=PYVMOMI_IMPORT_ERROR)
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
            self.si = SmartConnect(host=self.hostname, port=self.port, user=self.username, pwd=self.password,
                                   sslContext=context, httpConnectionTimeout=HTTP_TIMEOUT)
            self.content = self.si.RetrieveContent()
        except ssl.SSLCertVerificationError as exc:
            raise CertificateError(
                'the certificate of vSphere server %s could not be verified (%s); install its CA or set '
                'validate_certs: false' % (self.endpoint, exc.verify_message or exc.reason),
                provider_message=str(exc), details={'hostname': self.hostname, 'port': self.port})
        except ssl.SSLError as exc:
            raise CertificateError('TLS with vSphere server %s failed: %s' % (self.endpoint, exc.reason or exc),
                                   provider_message=str(exc), details={'hostname': self.hostname, 'port': self.port})
        except vim.fault.InvalidLogin as exc:
            # Never the password, nor anything derived from it.
            raise AuthenticationError("vSphere server %s refused the login of user '%s': wrong user name or "
                                      "password" % (self.endpoint, self.username),
                                      provider_message=fault_message(exc),
                                      details={'hostname': self.hostname, 'port': self.port})
        except vmodl.MethodFault as exc:
            raise translate(exc, 'logging in to vSphere server %s' % self.endpoint)
        except _NETWORK_ERRORS as exc:
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
            if not isinstance(self._dc, vim.Datacenter):
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
        except _NETWORK_ERRORS as exc:
            self._broken = fault_message(exc)
            raise translate(exc, doing, not_found)
        except Exception as exc:  # every fault and network error becomes an engine error
            raise translate(exc, doing, not_found)

    # -- property collector ------------------------------------------------------
    def _retrieve(self, objects: Iterable[Any], obj_type: Any, paths: List[str],
                  doing: str) -> Dict[str, Dict[str, Any]]:
        """One RetrievePropertiesEx for many objects: moid -> {path: value}."""
        pcq = vmodl.query.PropertyCollector
        objects = list(objects)
        if not objects:
            return {}
        spec = pcq.FilterSpec(objectSet=[pcq.ObjectSpec(obj=o, skip=False) for o in objects],
                              propSet=[pcq.PropertySpec(type=obj_type, pathSet=paths)])
        return self._collect(spec, doing)

    def _collect(self, spec: Any, doing: str) -> Dict[str, Dict[str, Any]]:
        pcq = vmodl.query.PropertyCollector
        pc = self.content.propertyCollector
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

    def _names(self) -> Dict[str, Dict[str, Any]]:
        """Every VM's name in ONE retrieval through a container view (names only)."""
        pcq = vmodl.query.PropertyCollector
        root = self._dc.vmFolder if self._dc is not None else self.content.rootFolder
        view = self._call(lambda: self.content.viewManager.CreateContainerView(root, [vim.VirtualMachine], True),
                          'listing virtual machines')
        try:
            spec = pcq.FilterSpec(
                objectSet=[pcq.ObjectSpec(obj=view, skip=True, selectSet=[
                    pcq.TraversalSpec(name='view', path='view', skip=False, type=vim.view.ContainerView)])],
                propSet=[pcq.PropertySpec(type=vim.VirtualMachine, pathSet=['name'])])
            return self._collect(spec, 'listing virtual machine names')
        finally:
            try:
                view.DestroyView()
            except Exception:  # the view dies with the session anyway
                pass

    # -- guests ----------------------------------------------------------------
    def _folder_path(self, folder: str, name: str) -> List[str]:
        """Inventory paths to try (at most two) for a name in a folder.

        A full path (``DC0/vm/prod``) is used as given; with ``datacenter`` set,
        a path relative to it (``vm/prod``) or to its VM folder (``prod``) works too.
        """
        path = folder.strip('/')
        paths = ['%s/%s' % (path, name)] if path else []
        if self.datacenter:
            dc = self.datacenter.strip('/')
            if path != dc and not path.startswith(dc + '/'):
                relative = path if path == 'vm' or path.startswith('vm/') else ('vm/%s' % path).rstrip('/')
                paths.insert(0, '%s/%s/%s' % (dc, relative, name))
        return paths

    def _locate(self, ref: GuestRef) -> List[Any]:
        """The VM object(s) a ref names, in a constant number of calls (not a bare name)."""
        index = self.content.searchIndex
        if ref.id:
            return [vim.VirtualMachine(ref.id, self._stub())]
        if ref.uuid:
            for instance in (False, True):
                found = self._by_uuid(index, ref, instance)
                if found:
                    return found
            return []
        for path in self._folder_path(ref.folder or '', ref.name or ''):
            found = self._call(lambda path=path: index.FindByInventoryPath(path),
                               'looking up guest %s' % ref.describe(), GuestNotFoundError)
            if isinstance(found, vim.VirtualMachine):
                return [found]
        return []

    def _by_uuid(self, index: Any, ref: GuestRef, instance: bool) -> List[Any]:
        """Every VM with this BIOS (or instance) UUID: clones share a BIOS UUID, and picking the
        first of them would act on the wrong guest. Servers without FindAllByUuid (vcsim) get
        FindByUuid, which cannot tell; docs/vmware.md says so."""
        doing = 'looking up guest %s' % ref.describe()
        if not self._no_find_all:
            try:
                return list(index.FindAllByUuid(datacenter=self._dc, uuid=ref.uuid, vmSearch=True,
                                                instanceUuid=instance) or [])
            except vmodl.fault.MethodNotFound:
                self._no_find_all = True
            except Exception as exc:  # every fault and network error becomes an engine error
                raise translate(exc, doing, GuestNotFoundError)
        found = self._call(lambda: index.FindByUuid(datacenter=self._dc, uuid=ref.uuid, vmSearch=True,
                                                    instanceUuid=instance), doing, GuestNotFoundError)
        return [found] if found is not None else []

    def _guest(self, moid: str, props: Dict[str, Any]) -> Guest:
        self._props[moid] = props
        return Guest(id=moid, name=props.get('name', moid),
                     power_state=_POWER.get(str(props.get('runtime.powerState')), 'unknown'), handle=props['_obj'])

    def find_guest(self, ref: GuestRef) -> Guest:
        return self.find_guests([ref])[0]

    def find_guests(self, refs: List[GuestRef]) -> List[Guest]:
        """All refs with one name scan (if any bare names) and one property retrieval."""
        for ref in refs:
            ref.validate()
        located: List[List[Any]] = []
        bare = [ref for ref in refs if ref.name and not ref.folder and not ref.id and not ref.uuid]
        by_name: Dict[str, List[Any]] = {}
        if bare:
            for moid, props in self._names().items():
                by_name.setdefault(props.get('name'), []).append(props['_obj'])
        for ref in refs:
            located.append(by_name.get(ref.name, []) if ref in bare else self._locate(ref))
        objects = {vm._moId: vm for vms in located for vm in vms}
        props = self._guest_props(objects.values(), refs)
        guests = []
        for ref, vms in zip(refs, located):
            # A moid of something else (a host, a folder) has no VM properties: not found, never guessed.
            candidates = [self._guest(vm._moId, props[vm._moId]) for vm in vms
                          if 'name' in props.get(vm._moId, {})]
            if not candidates:
                raise GuestNotFoundError('vmware guest %s not found on %s%s' % (
                    ref.describe(), self.endpoint, " in datacenter '%s'" % self.datacenter if self.datacenter else ''),
                    details={'guest': ref.describe()})
            guests.append(pick_one(candidates, ref, self.provider))
        return guests

    def _guest_props(self, vms: Iterable[Any], refs: List[GuestRef]) -> Dict[str, Dict[str, Any]]:
        vms = list(vms)
        try:
            return self._retrieve(vms, vim.VirtualMachine, _GUEST_PROPS, 'reading guests')
        except GuestNotFoundError:
            # A moid that does not exist fails the whole retrieval: find out which one.
            for ref in refs:
                if ref.id:
                    try:
                        self._retrieve([vim.VirtualMachine(ref.id, self._stub())], vim.VirtualMachine, ['name'],
                                       'reading guest %s' % ref.describe())
                    except GuestNotFoundError as exc:
                        raise GuestNotFoundError('vmware guest %s not found on %s' % (ref.describe(), self.endpoint),
                                                 provider_message=exc.provider_message,
                                                 details={'guest': ref.describe()})
            raise

    def list_guests(self) -> List[Guest]:
        vms = [props['_obj'] for props in self._names().values()]
        props = self._retrieve(vms, vim.VirtualMachine, _GUEST_PROPS, 'reading guests')
        return [self._guest(moid, p) for moid, p in sorted(props.items(), key=lambda kv: kv[1].get('name', ''))]

    def refresh_guest(self, guest: Guest) -> Guest:
        props = self._retrieve([guest.handle], vim.VirtualMachine, _GUEST_PROPS, "reading guest '%s'" % guest.name)
        return self._guest(guest.id, props[guest.id])

    # -- capabilities ----------------------------------------------------------
    def capabilities(self, guest: Guest) -> Capabilities:
        if guest.id not in self._props:
            self.refresh_guest(guest)
        props = self._props[guest.id]
        flags = {flag: bool(props.get('capability.%s' % flag)) for flag in _CAPABILITY_FLAGS}
        caps = Capabilities(memory=True, quiesce=True, internal=True, external=False, revert=True,
                            revert_external=False, delete_children=True, concurrent=True)
        reasons = caps.reasons
        reasons['external'] = ('VMware snapshots are always internal (delta disks managed by vSphere); '
                               'use kind: internal')
        power = guest.power_state
        if power != 'running':
            caps.memory = False
            reasons['memory'] = "guest '%s' is %s: there is no memory state to save" % (guest.name, power)
        tools = props.get('guest.toolsRunningStatus')
        if power != 'running':
            caps.quiesce = False
            reasons['quiesce'] = "guest '%s' is %s; quiescing needs a running guest with VMware Tools" % (
                guest.name, power)
        elif tools != 'guestToolsRunning':
            # vSphere silently ignores quiesce=true without running Tools: refuse instead.
            caps.quiesce = False
            reasons['quiesce'] = "VMware Tools are not running in guest '%s' (toolsRunningStatus %s)" % (
                guest.name, tools)
        if self.honor_capability_flags:
            hint = (" (vSphere reports capability.%s false; if this server's flags are wrong, as vcsim's are, "
                    "set honor_capability_flags: false to let the server decide)")
            if not flags['snapshotOperationsSupported']:
                caps.internal = False
                reasons['internal'] = ("vSphere says guest '%s' does not support snapshots" % guest.name
                                       + hint % 'snapshotOperationsSupported')
            if caps.memory and not flags['memorySnapshotsSupported']:
                caps.memory = False
                reasons['memory'] = ("guest '%s' cannot take memory snapshots" % guest.name
                                     + hint % 'memorySnapshotsSupported')
            if caps.quiesce and not flags['quiescedSnapshotsSupported']:
                caps.quiesce = False
                reasons['quiesce'] = ("guest '%s' cannot take quiesced snapshots" % guest.name
                                      + hint % 'quiescedSnapshotsSupported')
            if not flags['revertToSnapshotSupported']:
                caps.revert = False
                reasons['revert'] = ("guest '%s' cannot be reverted" % guest.name
                                     + hint % 'revertToSnapshotSupported')
        return caps

    def prepare_spec(self, guest: Guest, spec: SnapshotSpec, warnings: List[str]) -> SnapshotSpec:
        # vSphere's default (and the one that does not stun the guest for a memory dump): no memory.
        return SnapshotSpec(**dict(spec.__dict__, memory=bool(spec.memory)))

    # -- snapshots ---------------------------------------------------------------
    def _snapshot_state(self, guest: Guest, fresh: bool) -> Tuple[Any, Any]:
        props = self._props.get(guest.id)
        if fresh or props is None or '_snapshots_used' in props:
            props = self._retrieve([guest.handle], vim.VirtualMachine, _GUEST_PROPS,
                                   "reading the snapshots of guest '%s'" % guest.name).get(guest.id)
            if props is None:
                raise GuestNotFoundError("vmware guest '%s' (id %s) has gone" % (guest.name, guest.id))
            self._props[guest.id] = props
        props['_snapshots_used'] = True
        return props.get('snapshot'), props.get('layoutEx')

    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        # The first read after a lookup uses the properties fetched with it; later reads go to the server.
        info, layout = self._snapshot_state(guest, fresh=False)
        return snapshot_records(info, layout)

    def _stub(self) -> Any:
        return self.si._stub  # pylint: disable=protected-access

    def _start(self, action: str, guest: Guest, name: str, fn: Callable[[], Any], doing: str) -> Operation:
        if self._broken is not None:
            # One dead or frozen server must not cost a network timeout per guest.
            raise ConnectionFailedError('%s (not started: the connection to vSphere broke earlier in this task: %s)'
                                        % (doing, self._broken), provider_message=self._broken)
        try:
            task = fn()
        except ConnectionRefusedError as exc:
            # Refused: the request never reached the server.
            self._broken = fault_message(exc)
            raise translate(exc, '%s (not started)' % doing)
        except _NETWORK_ERRORS as exc:
            # The request may have reached the server before the connection broke.
            self._broken = fault_message(exc)
            raise translate(exc, '%s; it may have been started on the server: check the guest before retrying'
                            % doing)
        except Exception as exc:  # every fault becomes an engine error
            raise translate(exc, doing)
        self._props.pop(guest.id, None)
        return Operation(action=action, guest=guest, snapshot_name=name, handle=task, id=task._moId)

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        vm = guest.handle
        quiesce = spec.quiesce != 'never'
        op = self._start('create', guest, spec.name, lambda: vm.CreateSnapshot_Task(
            name=spec.name, description=encode_description(spec.description, spec.marker),
            memory=bool(spec.memory), quiesce=quiesce),
            "creating snapshot '%s' of guest '%s'" % (spec.name, guest.name))
        op.follow_up = lambda: self._verify_created(op, spec)
        return op

    def _verify_created(self, op: Operation, spec: SnapshotSpec) -> Optional[Operation]:
        """vSphere may drop memory or quiescing without a fault: check what it recorded."""
        guest = op.guest
        info, layout = self._snapshot_state(guest, fresh=True)
        moid = getattr(op.result, '_moId', None)
        record = next((r for r in snapshot_records(info, layout) if r.id == moid), None)
        if record is None:
            raise ProviderError("vSphere reported snapshot '%s' of guest '%s' as created (%s) but it is not in the "
                                "guest's snapshot tree" % (spec.name, guest.name, moid))
        dropped = []
        if spec.memory and not record.memory:
            dropped.append('memory was asked but vSphere stored no memory file')
        if spec.quiesce != 'never' and record.quiesced is False:
            dropped.append('quiescing was asked but vSphere recorded the snapshot as not quiesced')
        if not dropped:
            return None
        problem = "snapshot '%s' of guest '%s' is not what was asked: %s" % (
            spec.name, guest.name, '; '.join(dropped))
        snap = vim.vm.Snapshot(moid, self._stub())
        cleanup = self._start('delete', guest, spec.name, lambda: snap.RemoveSnapshot_Task(
            removeChildren=False, consolidate=True), '%s; removing it again' % problem)

        def report() -> None:
            raise ProviderError('%s; it was removed again, nothing was kept' % problem)
        cleanup.follow_up = report
        return cleanup

    def start_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Operation:
        snap = vim.vm.Snapshot(snapshot.id, self._stub())
        op = self._start('revert', guest, snapshot.name,
                         lambda: snap.RevertToSnapshot_Task(suppressPowerOn=power_state == 'off'),
                         "reverting guest '%s' to snapshot '%s'" % (guest.name, snapshot.name))
        want = power_after_revert(snapshot, power_state)
        op.follow_up = lambda: self._enforce_power(guest, want, snapshot.name)
        return op

    def _power_state(self, guest: Guest) -> str:
        props = self._retrieve([guest.handle], vim.VirtualMachine, ['runtime.powerState'],
                               "reading the power state of guest '%s'" % guest.name)
        return _POWER.get(str(props.get(guest.id, {}).get('runtime.powerState')), 'unknown')

    def _enforce_power(self, guest: Guest, want: str, snapshot_name: str, attempt: int = 0) -> Optional[Operation]:
        """Bring the guest to ``want`` after a revert, whatever the server did, and check it."""
        have = self._power_state(guest)
        guest.power_state = have
        if have == want:
            return None
        if attempt >= 2:
            raise ProviderError("guest '%s' is %s after reverting to '%s', not %s as asked"
                                % (guest.name, have, snapshot_name, want))
        vm = guest.handle
        doing = "making guest '%s' %s after reverting to '%s'" % (guest.name, want, snapshot_name)
        if want == 'off':
            fn = vm.PowerOffVM_Task
        elif want == 'running' or (want == 'suspended' and have == 'off'):
            fn = vm.PowerOnVM_Task
        elif want == 'suspended':
            fn = vm.SuspendVM_Task
        else:
            raise ProviderError("guest '%s' is %s after the revert; cannot make it %s" % (guest.name, have, want))
        op = self._start('power', guest, snapshot_name, fn, doing)
        op.follow_up = lambda: self._enforce_power(guest, want, snapshot_name, attempt + 1)
        return op

    def start_delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> Operation:
        snap = vim.vm.Snapshot(snapshot.id, self._stub())
        return self._start('delete', guest, snapshot.name,
                           lambda: snap.RemoveSnapshot_Task(removeChildren=remove_children, consolidate=True),
                           "deleting snapshot '%s' of guest '%s'" % (snapshot.name, guest.name))

    # -- waiting -----------------------------------------------------------------
    def poll(self, operation: Operation) -> None:
        task = operation.handle
        props = self._retrieve([task], vim.Task, ['info.state', 'info.error', 'info.result'],
                               'reading task %s' % operation.id)
        self._apply(operation, props.get(operation.id, {}))

    def _apply(self, op: Operation, values: Dict[str, Any]) -> None:
        state = values.get('info.state')
        if isinstance(values.get('info.progress'), int):
            op.percent = values['info.progress']   # shown by the live progress of the action plugin
        if state == 'success':
            op.finish(result=values.get('info.result'))
        elif state == 'error':
            fault = values.get('info.error')
            doing = '%s of snapshot %s on guest %s (task %s)' % (op.action, op.snapshot_name, op.guest.name, op.id)
            op.finish(error=translate(fault, doing) if fault is not None else
                      ProviderError('%s failed without a reason' % doing))

    def wait(self, operations: List[Operation], policy: WaitPolicy,
             progress: Optional[ProgressCallback] = None) -> None:
        """All tasks (and their follow-ups) through the property collector, under one deadline."""
        deadline = policy.clock() + policy.timeout
        waiting = list(operations)
        while waiting:
            self._wait_tasks(pending(waiting), deadline, policy, progress)
            waiting = self.run_follow_ups(waiting)

    def _wait_tasks(self, ops: List[Operation], deadline: float, policy: WaitPolicy,
                    progress: Optional[ProgressCallback]) -> None:
        if not ops:
            return
        pcq = vmodl.query.PropertyCollector
        if self._broken is not None:
            self._lost(ops, ConnectionError('the connection broke earlier in this task: %s' % self._broken))
            return
        by_id = {op.id: op for op in ops}
        what = ', '.join(sorted('%s %s' % (op.action, op.guest.name) for op in ops))
        try:
            pc = self.content.propertyCollector.CreatePropertyCollector()
            pc.CreateFilter(pcq.FilterSpec(
                objectSet=[pcq.ObjectSpec(obj=op.handle) for op in ops],
                propSet=[pcq.PropertySpec(type=vim.Task,
                                          pathSet=['info.state', 'info.error', 'info.result', 'info.progress'])]),
                True)
        except Exception as exc:
            if isinstance(exc, _NETWORK_ERRORS):
                self._broken = fault_message(exc)
            self._lost(ops, exc)
            return
        start = last_report = policy.clock()
        version = ''
        try:
            while pending(ops):
                now = policy.clock()
                if now >= deadline:
                    raise WaitTimeoutError('timed out after %ds waiting for %s' % (policy.timeout, what),
                                           details={'timeout': policy.timeout, 'tasks': sorted(by_id)})
                if progress is not None and now - last_report >= policy.progress_every:
                    progress('still waiting for %s (%ds of %ds)' % (
                        ', '.join(sorted('%s %s' % (o.action, o.guest.name) for o in pending(ops))),
                        now - start, policy.timeout))
                    last_report = now
                wait = max(1, min(MAX_WAIT_SLICE, int(math.ceil(deadline - now)), int(policy.progress_every)))
                try:
                    # A frozen server must not hold the wait past its deadline for a whole socket timeout.
                    self._socket_timeout(wait + WAIT_SOCKET_MARGIN)
                    update = pc.WaitForUpdatesEx(version, pcq.WaitOptions(maxWaitSeconds=wait))
                except Exception as exc:
                    if isinstance(exc, _NETWORK_ERRORS):
                        self._broken = fault_message(exc)
                    self._lost(pending(ops), exc)
                    return
                if update is None:
                    continue
                version = update.version
                for filter_set in update.filterSet or []:
                    for obj in filter_set.objectSet or []:
                        op = by_id.get(obj.obj._moId)
                        if op is None or op.done:
                            continue
                        values = {change.name: change.val for change in obj.changeSet or []}
                        self._apply(op, values)
        finally:
            self._socket_timeout(HTTP_TIMEOUT)
            try:
                pc.DestroyPropertyCollector()
            except Exception:  # the collector dies with the session anyway
                pass

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

    @staticmethod
    def _lost(ops: List[Operation], exc: BaseException) -> None:
        """The server stopped answering while tasks ran: their outcome is unknown, and each says so."""
        for op in ops:
            if op.done:
                continue
            outcome = {'create': "the snapshot may have been created",
                       'delete': "the snapshot may have been deleted",
                       'revert': "the guest may have been reverted"}.get(op.action, "the guest's power state may "
                                                                                    "have changed")
            doing = ("waiting for task %s (%s of snapshot '%s' on guest '%s'); %s on the server: check the guest "
                     "before retrying" % (op.id, op.action, op.snapshot_name, op.guest.name, outcome))
            op.finish(error=translate(exc, doing, ProviderError))


def power_after_revert(snapshot: SnapshotRecord, power_state: str) -> str:
    """The guest's power state after a revert: forced, or as vCenter restores it.

    ``restore``: the state recorded in a memory snapshot (running or suspended), off for a disk-only one.
    """
    forced = {'on': 'running', 'off': 'off'}.get(power_state)
    if forced is not None:
        return forced
    if snapshot.memory and snapshot.power_state in ('running', 'suspended'):
        return snapshot.power_state
    return 'off'


def snapshot_records(info: Any, layout: Any) -> List[SnapshotRecord]:
    """The flat list of records of a VM's snapshot tree (``vm.snapshot``) with sizes from ``vm.layoutEx``."""
    if info is None:
        return []
    current = getattr(info.currentSnapshot, '_moId', None)
    files = {f.key: f for f in (getattr(layout, 'file', None) or [])}
    layouts = {s.key._moId: s for s in (getattr(layout, 'snapshot', None) or [])} if layout is not None else {}
    records: List[SnapshotRecord] = []

    def walk(nodes: List[Any], parent: Optional[SnapshotRecord]) -> None:
        for node in nodes or []:
            moid = node.snapshot._moId
            description, marker = decode_description(node.description)
            state = str(node.state)
            snap_layout = layouts.get(moid)
            memory = (snap_layout.memoryKey not in (None, -1)) if snap_layout is not None else state != 'poweredOff'
            record = SnapshotRecord(
                name=node.name, id=moid, parent=parent.name if parent else None,
                parent_id=parent.id if parent else None,
                created_at=to_iso(node.createTime) if node.createTime else None,
                current=moid == current, power_state=_POWER.get(state, 'unknown'), memory=memory,
                quiesced=bool(node.quiesced), kind='internal', description=description,
                provider_details={'state': state, 'snapshot_id': node.id, 'vm': node.vm._moId if node.vm else None,
                                  'replay_supported': node.replaySupported})
            record.apply_marker(marker)
            record.size_bytes = _snapshot_size(snap_layout, layouts.get(parent.id) if parent else None, files)
            if parent is not None:
                parent.children.append(record.name)
            records.append(record)
            walk(node.childSnapshotList, record)

    walk(info.rootSnapshotList, None)
    return records


def _snapshot_size(snap: Any, parent: Any, files: Dict[int, Any]) -> Optional[int]:
    """Bytes of the snapshot's own files per layoutEx; None when the layout does not tell.

    Its state files (.vmsn, .vmem) plus, for each disk, the delta units its
    chain has beyond its parent's (never the base disk).
    """
    if snap is None or not files:
        return None
    keys = [k for k in (snap.dataKey, snap.memoryKey) if k not in (None, -1)]
    parent_chains = {}
    if parent is not None:
        parent_chains = {d.key: [tuple(u.fileKey) for u in d.chain or []] for d in parent.disk or []}
    for disk in snap.disk or []:
        chain = [tuple(u.fileKey) for u in disk.chain or []]
        before = parent_chains.get(disk.key, chain[:1])
        for unit in chain[1:]:
            if unit not in before:
                keys.extend(unit)
    total = 0
    for key in keys:
        entry = files.get(key)
        if entry is None or entry.size is None:
            return None
        total += entry.size
    return total

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt backend: session, guests, leases, capabilities and the snapshot calls (libvirt-python)."""

from __future__ import annotations

import dataclasses
import difflib
import os
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlparse

from ..._backend import SnapshotBackend, pick_one
from ..._errors import (
    ConnectionFailedError, GuestNotFoundError, InvalidRequestError, MissingLibraryError, ProviderError,
    QuiesceUnavailableError, SavepointError, UnsupportedError, WaitTimeoutError,
)
from ..._model import Capabilities, Guest, GuestRef, SnapshotRecord, SnapshotSpec
from ..._redact import mask_uri, redact_text, uri_secrets
from ..._waiting import Operation
from .errors import ERR_NO_DOMAIN, ERR_NO_DOMAIN_METADATA, LIBVIRT_IMPORT_ERROR, libvirt, translate, version_text
from .snapshot_xml import disk_targets, snapshot_record, snapshot_xml, with_marker

#: the collection's namespace in a domain's <metadata>: holds the lease of the run acting on it (_locking.py)
LEASE_NAMESPACE = 'https://savepoint.virt/xmlns/lease/1'
LEASE_PREFIX = 'savepoint'

#: seconds a snapshot call may take before start_* returns it unfinished (the engine then polls it under the
#: task's deadline): a frozen QEMU never answers savevm/loadvm/delvm, and libvirt waits for it for ever.
SYNC_GRACE_SECONDS = 2.0
#: seconds a lease read/write may take: a job hung on a frozen QEMU blocks every call on that domain
LEASE_CALL_SECONDS = 20.0

# Reverting to external snapshots arrived in libvirt 9.9.0.
REVERT_EXTERNAL_VERSION = 9009000

_STATE_NAMES = {1: 'running', 2: 'running', 3: 'paused', 4: 'running', 5: 'off', 6: 'off', 7: 'suspended'}
GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0'


class LibvirtBackend(SnapshotBackend):
    provider = 'libvirt'
    guest_fields = ('name', 'uuid')
    supports_leases = True
    connection_options = {
        'uri': {
            'type': 'str',
            'env': ['LIBVIRT_DEFAULT_URI'],
            'default': 'qemu:///system',
            'description': 'libvirt connection URI.',
        },
    }

    def __init__(self, connection: Dict[str, Any]) -> None:
        super().__init__(connection)
        uri = self.connection.get('uri')
        if uri is None:
            uri = os.environ.get('LIBVIRT_DEFAULT_URI') or 'qemu:///system'
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidRequestError('uri must not be empty (leave it unset for LIBVIRT_DEFAULT_URI or '
                                      'qemu:///system)')
        try:
            port = urlparse(uri).port
        except ValueError:
            port = -1
        if port is not None and not 1 <= port <= 65535:
            raise InvalidRequestError('uri: the port must be a number between 1 and 65535')
        self.uri = uri
        # The URI may hold credentials (qemu+tcp://user:pass@host): messages only ever name safe_uri.
        self.safe_uri = mask_uri(self.uri)
        self.secrets = uri_secrets(self.uri)
        self.conn: Any = None
        self._lib_version: Optional[int] = None

    # -- session -------------------------------------------------------------
    def connect(self) -> None:
        if libvirt is None:
            raise MissingLibraryError('the libvirt provider needs libvirt-python (pip install libvirt-python) '
                                      'where the module runs', provider_message=LIBVIRT_IMPORT_ERROR)
        # libvirt prints every error to stderr by default; they are reported through exceptions instead.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        try:
            self.conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            message = redact_text(exc.get_error_message() or str(exc), self.secrets)
            raise ConnectionFailedError("cannot connect to libvirt at '%s': %s" % (self.safe_uri, message),
                                        provider_message=message,
                                        details={'uri': self.safe_uri, 'libvirt_code': exc.get_error_code()})

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # closing a dead connection must not hide the real error
                pass
            self.conn = None

    @property
    def is_test_driver(self) -> bool:
        return self.conn.getType() == 'Test'

    @property
    def lib_version(self) -> int:
        if self._lib_version is None:
            self._lib_version = self.conn.getLibVersion()
        return self._lib_version

    # -- guests ----------------------------------------------------------------
    def _guest(self, dom: Any) -> Guest:
        try:
            state = dom.state()[0]
            return Guest(id=dom.UUIDString(), name=dom.name(), power_state=_STATE_NAMES.get(state, 'unknown'),
                         handle=dom)
        except Exception as exc:
            raise translate(exc, 'reading guest state')

    def find_guest(self, ref: GuestRef) -> Guest:
        if ref.id or ref.folder:
            raise InvalidRequestError('libvirt guests are named by name or uuid (no id or folder)')
        try:
            dom = self.conn.lookupByUUIDString(ref.uuid) if ref.uuid else self.conn.lookupByName(ref.name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != ERR_NO_DOMAIN and 'invalid UUID' not in str(exc):
                raise translate(exc, 'looking up guest %s' % ref.describe())
            return pick_one(self._similar(ref), ref, self.provider) if ref.name else pick_one([], ref, self.provider)
        return self._guest(dom)

    def _similar(self, ref: GuestRef) -> List[Guest]:
        """No exact match: raise naming the closest names, so a typo is obvious."""
        names = [d.name() for d in self.conn.listAllDomains(0)]
        close = difflib.get_close_matches(ref.name or '', names, n=5, cutoff=0.5)
        hint = ('; did you mean: %s?' % ', '.join(close)) if close else (
            '; this host has: %s' % (', '.join(sorted(names)[:20]) or 'no guests'))
        raise GuestNotFoundError("libvirt guest %s not found at %s%s" % (ref.describe(), self.safe_uri, hint),
                                 details={'candidates': close})

    def list_guests(self) -> List[Guest]:
        try:
            return [self._guest(d) for d in self.conn.listAllDomains(0)]
        except libvirt.libvirtError as exc:
            raise translate(exc, 'listing guests')

    def refresh_guest(self, guest: Guest) -> Guest:
        return self._guest(guest.handle)

    # -- lease: an element of the domain's <metadata> ---------------------------
    @property
    def lease_settle_seconds(self) -> float:
        # The test driver's state lives in this process only: no other run can see it, nothing to settle.
        return 0.0 if self.conn.getType().lower() == 'test' else 1.0

    @staticmethod
    def _metadata_flags(dom: Any, write: bool) -> int:
        # The persistent definition survives a restart; a running guest's live one is written too, so that
        # both agree. A transient guest has only the live definition.
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if dom.isPersistent() else libvirt.VIR_DOMAIN_AFFECT_LIVE
        if write and dom.isPersistent() and dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags

    def _bounded(self, body: Callable[[], Any], doing: str) -> Any:
        """``body`` in a thread, given up after LEASE_CALL_SECONDS (the domain is stuck in a hung job)."""
        box: Dict[str, Any] = {}

        def work() -> None:
            try:
                box['result'] = body()
            except BaseException as exc:  # handed to the caller's thread below
                box['error'] = exc
        thread = threading.Thread(target=work, name='savepoint-lease', daemon=True)
        thread.start()
        thread.join(LEASE_CALL_SECONDS)
        if thread.is_alive():
            raise WaitTimeoutError('%s: libvirt did not answer within %ds (a job on the guest is hung)'
                                   % (doing, LEASE_CALL_SECONDS))
        if 'error' in box:
            raise box['error']
        return box.get('result')

    def read_lease(self, guest: Guest) -> Optional[str]:
        return self._bounded(lambda: self._read_lease(guest), "reading the lease of guest '%s'" % guest.name)

    def write_lease(self, guest: Guest, text: Optional[str]) -> None:
        self._bounded(lambda: self._write_lease(guest, text), "writing the lease of guest '%s'" % guest.name)

    def _read_lease(self, guest: Guest) -> Optional[str]:
        dom = guest.handle
        try:
            xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, LEASE_NAMESPACE, self._metadata_flags(dom, False))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == ERR_NO_DOMAIN_METADATA:
                return None
            raise translate(exc, "reading the lease of guest '%s'" % guest.name, self.secrets)
        return ET.fromstring(xml).text or None

    def _write_lease(self, guest: Guest, text: Optional[str]) -> None:
        dom = guest.handle
        xml = None
        if text is not None:
            node = ET.Element('lease')
            node.text = text
            xml = ET.tostring(node, encoding='unicode')
        try:
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, LEASE_PREFIX if xml else None,
                            LEASE_NAMESPACE, self._metadata_flags(dom, True))
        except libvirt.libvirtError as exc:
            raise translate(exc, "writing the lease of guest '%s'" % guest.name, self.secrets)

    # -- capabilities ----------------------------------------------------------
    def _agent_state(self, dom: Any) -> Optional[str]:
        """'connected', 'disconnected', None when there is no agent channel."""
        root = ET.fromstring(dom.XMLDesc(0))
        for target in root.findall("./devices/channel/target"):
            if target.get('name') == GUEST_AGENT_CHANNEL:
                return target.get('state') or 'disconnected'
        return None

    def capabilities(self, guest: Guest) -> Capabilities:
        caps = Capabilities(memory=guest.power_state in ('running', 'paused'), internal=True,
                            delete_children=True)
        reasons = caps.reasons
        if not caps.memory:
            reasons['memory'] = "guest '%s' is %s: there is no memory state to save" % (guest.name, guest.power_state)
        if self.is_test_driver:
            reasons['external'] = "libvirt's test driver cannot take external (disk-only) snapshots"
            reasons['quiesce'] = "libvirt's test driver has no guest agent"
            return caps
        caps.external = True
        caps.revert_external = self.lib_version >= REVERT_EXTERNAL_VERSION
        if not caps.revert_external:
            reasons['revert_external'] = ('reverting to an external snapshot is not supported by libvirt %s '
                                          '(it needs libvirt 9.9.0 or newer)' % version_text(self.lib_version))
        if guest.power_state != 'running':
            reasons['quiesce'] = "guest '%s' is %s; quiescing needs a running guest agent" % (
                guest.name, guest.power_state)
        else:
            # Whether the agent answers is read in prepare_spec, only when a task asks to quiesce.
            caps.quiesce = True
        return caps

    def _quiesce_problem(self, guest: Guest) -> Optional[str]:
        try:
            agent = self._agent_state(guest.handle)
        except libvirt.libvirtError as exc:
            raise translate(exc, 'reading the configuration of guest %s' % guest.name)
        if agent is None:
            return "guest '%s' has no QEMU guest agent channel (%s)" % (guest.name, GUEST_AGENT_CHANNEL)
        if agent != 'connected':
            return "the QEMU guest agent of guest '%s' is not connected" % guest.name
        return None

    def prepare_spec(self, guest: Guest, spec: SnapshotSpec, warnings: List[str]) -> SnapshotSpec:
        live = guest.power_state in ('running', 'paused')
        if spec.kind == 'internal':
            if spec.memory is False and live:
                raise UnsupportedError(
                    "libvirt cannot take a disk-only internal snapshot of %s guest '%s': use memory: true "
                    "(the default), kind: external, or shut the guest off first" % (guest.power_state, guest.name))
            if spec.quiesce == 'required':
                raise QuiesceUnavailableError('quiesce: required cannot be honoured: libvirt quiesces only '
                                              'external (disk-only) snapshots; use kind: external')
            if spec.quiesce == 'preferred':
                warnings.append("guest '%s': quiesce: preferred fell back to a snapshot without quiescing: "
                                "libvirt quiesces only external (disk-only) snapshots" % guest.name)
            memory = live if spec.memory is None else spec.memory
            return SnapshotSpec(**dict(spec.__dict__, memory=memory, quiesce='never'))
        if spec.memory:
            raise UnsupportedError('external snapshots taken by this collection are disk-only: '
                                   'use memory: false (or kind: internal to keep memory)')
        quiesce = spec.quiesce
        problem = self._quiesce_problem(guest) if quiesce != 'never' else None
        if problem and quiesce == 'required':
            raise QuiesceUnavailableError('quiesce: required cannot be honoured: %s' % problem)
        if problem:
            warnings.append("guest '%s': quiesce: preferred fell back to a snapshot without quiescing: %s"
                            % (guest.name, problem))
            quiesce = 'never'
        return SnapshotSpec(**dict(spec.__dict__, memory=False, quiesce=quiesce))

    # -- snapshots ---------------------------------------------------------------
    def _record(self, snap: Any, current_name: Optional[str]) -> SnapshotRecord:
        return snapshot_record(snap.getXMLDesc(0), snap.getName(), current_name, self._overlay_size)

    def _overlay_size(self, paths: List[Optional[str]]) -> Optional[int]:
        """Bytes of the overlay files, when they are on this machine (never guessed for remote hosts)."""
        if urlparse(self.uri).hostname not in (None, '', 'localhost'):
            return None
        total = 0
        for path in paths:
            if not path or not os.path.exists(path):
                return None
            total += os.stat(path).st_blocks * 512
        return total

    def list_snapshots(self, guest: Guest) -> List[SnapshotRecord]:
        dom = guest.handle
        try:
            snaps = dom.listAllSnapshots(0)
            current = dom.snapshotCurrent(0).getName() if dom.hasCurrentSnapshot(0) else None
            records = [self._record(s, current) for s in snaps]
        except libvirt.libvirtError as exc:
            raise translate(exc, "listing snapshots of guest '%s'" % guest.name)
        by_name = {r.name: r for r in records}
        for record in records:
            if record.parent in by_name:
                by_name[record.parent].children.append(record.name)
        return records

    # -- blocking calls under the engine's deadline -------------------------------
    def _in_thread(self, op: Operation, body: Callable[[], Any]) -> Operation:
        """Run ``body`` (blocking libvirt calls) in a thread; poll() finishes ``op`` when it is done."""
        box: Dict[str, Any] = {}

        def work() -> None:
            try:
                box['result'] = body()
            except SavepointError as exc:
                box['error'] = exc
            except Exception as exc:  # any other failure still ends as the engine's error
                box['error'] = translate(exc, "%s of snapshot '%s' of guest '%s'"
                                         % (op.action, op.snapshot_name, op.guest.name), self.secrets)

        thread = threading.Thread(target=work, name='savepoint-%s-%s' % (op.action, op.guest.name), daemon=True)
        op.handle = (thread, box)
        thread.start()
        thread.join(SYNC_GRACE_SECONDS)
        self.poll(op)
        return op

    def poll(self, operation: Operation) -> None:
        if operation.done:
            return
        thread, box = operation.handle
        if thread.is_alive():
            return
        if 'error' in box:
            operation.finish(error=box['error'])
        else:
            operation.finish(result=box.get('result'))

    def start_create(self, guest: Guest, spec: SnapshotSpec) -> Operation:
        op = Operation(action='create', guest=guest, snapshot_name=spec.name, id=spec.name)
        return self._in_thread(op, lambda: self._create(guest, spec, op))

    def _create(self, guest: Guest, spec: SnapshotSpec, op: Operation) -> SnapshotRecord:
        dom = guest.handle
        flags = 0
        external_disks = None
        if spec.kind == 'external':
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
            if spec.quiesce != 'never':
                flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
            external_disks = disk_targets(dom.XMLDesc(0))
        started = time.monotonic()
        try:
            snap = dom.snapshotCreateXML(snapshot_xml(spec, external_disks), flags)
        except libvirt.libvirtError as exc:
            raise translate(exc, "creating snapshot '%s' of guest '%s'" % (spec.name, guest.name))
        elapsed = round(time.monotonic() - started, 3)
        # The whole call blocks a live guest (QEMU pauses it for savevm); a shut-off guest has nothing to block.
        blocked = elapsed if guest.power_state in ('running', 'paused') else 0.0
        if spec.marker is not None:
            snap = self._keep_pause(dom, snap, spec, blocked)
        try:
            record = self._record(snap, snap.getName() if snap.isCurrent(0) else None)
            record.quiesced = spec.quiesce != 'never' if spec.kind == 'external' else False
        except libvirt.libvirtError as exc:
            raise translate(exc, "reading back snapshot '%s' of guest '%s'" % (spec.name, guest.name))
        op.blocked_seconds = blocked
        if record.guest_blocked_seconds is None:
            record.guest_blocked_seconds = blocked   # this run measured it, even where it could not be kept
        return record

    def _keep_pause(self, dom: Any, snap: Any, spec: SnapshotSpec, seconds: float) -> Any:
        """Write the pause just measured into the snapshot's ownership marker, so that snapshot_info and the
        report show it later: its metadata is redefined as ``virsh snapshot-edit`` does (the secure XML, so
        no password of the saved domain definition is lost). Best effort: the snapshot stands either way."""
        marker = dataclasses.replace(spec.marker, guest_blocked_seconds=seconds)
        try:
            xml_text = with_marker(snap.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE), spec.description, marker)
            flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
            if snap.isCurrent(0):
                flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
            return dom.snapshotCreateXML(xml_text, flags)
        except libvirt.libvirtError:
            return snap

    def start_revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> Operation:
        op = Operation(action='revert', guest=guest, snapshot_name=snapshot.name, id=snapshot.name)
        return self._in_thread(op, lambda: self._revert(guest, snapshot, power_state))

    def _revert(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> None:
        dom = guest.handle
        flags = 0
        if power_state == 'on':
            flags = libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING
        try:
            snap = dom.snapshotLookupByName(snapshot.name, 0)
            # A revert restores the domain definition of the snapshot, <metadata> included: the lease of
            # this run is put back at once, or the guest would show the snapshot-time lease (or none).
            lease = self._read_lease(guest)
            dom.revertToSnapshot(snap, flags)
            self._write_lease(guest, lease)
            self._enforce_power_state(guest, snapshot, power_state)
        except libvirt.libvirtError as exc:
            raise translate(exc, "reverting guest '%s' to snapshot '%s'" % (guest.name, snapshot.name))

    def _enforce_power_state(self, guest: Guest, snapshot: SnapshotRecord, power_state: str) -> None:
        """Make the guest's run state what was asked, whatever the driver did on its own."""
        dom = guest.handle
        want = {'on': 'running', 'off': 'off'}.get(power_state, snapshot.power_state)
        have = _STATE_NAMES.get(dom.state()[0], 'unknown')
        if want == have or want == 'unknown':
            return
        if want == 'off':
            dom.destroy()
        elif want == 'running' and have == 'paused':
            dom.resume()
        elif want == 'running' and have == 'off':
            dom.create()
        elif want == 'paused' and have == 'running':
            dom.suspend()
        elif want == 'paused' and have == 'off':
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        have = _STATE_NAMES.get(dom.state()[0], 'unknown')
        if have != want:
            raise ProviderError("guest '%s' is %s after the revert, not %s as asked" % (guest.name, have, want))

    def start_delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> Operation:
        op = Operation(action='delete', guest=guest, snapshot_name=snapshot.name, id=snapshot.name)
        return self._in_thread(op, lambda: self._delete(guest, snapshot, remove_children))

    def _delete(self, guest: Guest, snapshot: SnapshotRecord, remove_children: bool) -> None:
        dom = guest.handle
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN if remove_children else 0
        try:
            dom.snapshotLookupByName(snapshot.name, 0).delete(flags)
        except libvirt.libvirtError as exc:
            raise translate(exc, "deleting snapshot '%s' of guest '%s'" % (snapshot.name, guest.name))

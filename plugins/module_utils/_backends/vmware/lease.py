# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-VM lease (one run at a time, _locking.py) as a folder: an atomic create-if-absent.

Why a folder, and not a register on the VM (a custom attribute, ``config.extraConfig``):

- A register has no compare-and-set that vcsim honours: ``ReconfigVM_Task``'s
  ``spec.changeVersion`` would be one on vCenter, but vcsim 0.24.2 ignores it,
  and ``SetField`` has none at all. Write, settle and read back then excludes
  only while two runs' read and write are closer together than the settle
  time; over HTTPS on a loaded controller they are not, and two runs each
  read "free", each wrote, each read back their own value later and each made
  the snapshot (what the custom-attribute lease did on vcsim). vcsim also
  *appends* on ``SetField`` and on ``extraConfig`` keys instead of replacing
  (simulator/custom_fields_manager.go, virtual_machine.go applyExtraConfig),
  so a reader that takes the first entry sees a stale value for ever.
- ``Folder.CreateFolder`` refuses a second child of one name with
  DuplicateName, atomically, on vCenter (inventory names are unique per
  folder) and on vcsim (the call runs under the parent folder's lock). So the
  folder ``savepoint.virt lease <vm moid>`` in the datacenter's VM folder is a
  true mutex; the lease text (who, until when) is the name of its one child
  folder, renewed by renaming it. A VM revert does not touch folders.
- A stale lease is removed by the moid of the folder that was read, and only
  while its text is still the one read; of two heirs one destroys it and
  creates a new one, the other then gets DuplicateName (or finds another text)
  and waits. A holder that lost its expired lease finds its folder gone at
  the next renewal and stops.

Cost: a claim is two CreateFolder calls (the mutex, then its text); renewals
and releases of many guests are one Rename_Task / Destroy_Task each, all
waited for together (``renew_leases``, ``release_leases``), and work on the
folders this session created, by their moids: a run that took an expired
lease over destroyed the old mutex folder (and its child) and made a new one,
which this session never names, so a release cannot remove another run's
lease and a renewal of a lost one fails (ManagedObjectNotFound) instead of
writing. The datacenter of each VM comes from the ``parent`` read with the
lookup (one walk per folder, not per VM).

Privileges: Folder.Create, Folder.Rename and Folder.Delete on the datacenter's
VM folder. Where folders cannot be made (an ESXi host without vCenter) the
claim raises UnsupportedError and the run goes on unlocked, with a warning.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._errors import GuestNotFoundError, ProviderError, SavepointError, UnsupportedError, WaitTimeoutError
from ..._model import Guest
from ..._waiting import Operation, WaitPolicy
from . import sdk
from .session import HTTP_TIMEOUT, VmwareSession

LEASE_FOLDER = 'savepoint.virt lease %s'
#: vSphere's limit for an inventory name
NAME_LIMIT = 80


class VmwareLeases(VmwareSession):
    """read_lease / write_lease / claim_lease on a per-VM folder."""

    supports_leases = True
    lease_mutex = True
    lease_max_chars = NAME_LIMIT
    lease_settle_seconds = 0.0

    def __init__(self, connection: Dict[str, Any]) -> None:
        super().__init__(connection)
        self._lease_parents: Dict[str, Any] = {}  # guest id or parent folder moid -> the datacenter's VM folder
        self._lease_held: Dict[str, Any] = {}  # guest id -> the mutex folder this session created
        self._lease_text: Dict[str, Tuple[Any, str]] = {}  # guest id -> (its lease child folder, its name)

    # -- where ---------------------------------------------------------------------
    def _lease_parent(self, guest: Guest) -> Any:
        """The VM folder of the VM's datacenter (the same for every run acting on this VM)."""
        if guest.id not in self._lease_parents:
            doing = "finding the datacenter of guest '%s' for its lease" % guest.name

            def walk() -> Any:
                obj = guest.handle
                props = self._props.get(guest.id) or {}
                if 'parent' in props or 'parentVApp' in props:  # read with the lookup: no call
                    parent = props.get('parent') or props.get('parentVApp')
                else:
                    parent = obj.parent or obj.parentVApp  # a VM in a vApp has no folder parent
                first = parent._moId if parent is not None else None  # pylint: disable=protected-access
                if first in self._lease_parents:  # VMs of one folder: one call, not a walk each
                    return self._lease_parents[first]
                for _depth in range(100):
                    if parent is None:
                        break
                    if isinstance(parent, sdk.vim.Datacenter):
                        self._lease_parents[first] = parent.vmFolder
                        return self._lease_parents[first]
                    parent = parent.parent
                raise GuestNotFoundError("guest '%s' is in no datacenter: no place for its lease" % guest.name)
            self._lease_parents[guest.id] = self._call(walk, doing, GuestNotFoundError)
        return self._lease_parents[guest.id]

    def _lease_state(self, guest: Guest) -> Tuple[Any, Any, Optional[str]]:
        """(mutex folder or None, its lease child or None, the lease text or None)."""
        parent = self._lease_parent(guest)
        name = LEASE_FOLDER % guest.id

        def look() -> Tuple[Any, Any, Optional[str]]:
            folder = self.content.searchIndex.FindChild(parent, name)
            if folder is None:
                return None, None, None
            children = list(folder.childEntity or [])
            if not children:
                return folder, None, None
            return folder, children[0], children[0].name
        try:
            return self._call(look, "reading the lease of guest '%s'" % guest.name, GuestNotFoundError)
        except GuestNotFoundError:  # removed while we looked: there is none now
            return None, None, None

    def _task(self, start: Any, doing: str) -> None:
        def run() -> None:
            sdk.WaitForTask(start())
        self._call(run, doing, GuestNotFoundError)

    def _destroy(self, folder: Any, doing: str) -> None:
        try:
            self._task(folder.Destroy_Task, doing)
        except GuestNotFoundError:  # already gone (another run removed it): what we wanted
            pass

    # -- the backend interface -------------------------------------------------------
    def read_lease(self, guest: Guest) -> Optional[str]:
        """None: no lease; '': a mutex whose text is not written (yet); otherwise the lease text."""
        folder, _child, text = self._lease_state(guest)
        if folder is None:
            return None
        return text or ''

    def claim_lease(self, guest: Guest, text: str, stale: Optional[str]) -> bool:
        """Take the lease if nobody holds it (after removing ``stale``, the exact lease read, if given)."""
        parent = self._lease_parent(guest)
        name = LEASE_FOLDER % guest.id
        if stale is not None:
            folder, _child, current = self._lease_state(guest)
            if folder is not None:
                if (current or '') != stale:
                    return False  # renewed or taken over since it was read
                self._destroy(folder, "removing the stale lease of guest '%s'" % guest.name)
        try:
            folder = self._call(lambda: parent.CreateFolder(name), "taking the lease of guest '%s'" % guest.name,
                                GuestNotFoundError)
        except ProviderError as exc:
            if (exc.details or {}).get('vsphere_fault') == 'DuplicateName':
                return False
            raise
        except UnsupportedError as exc:
            raise UnsupportedError("this vSphere server cannot create the lease folder of guest '%s' (%s)"
                                   % (guest.name, exc.provider_message or exc.msg))
        self._lease_held[guest.id] = folder
        try:
            child = self._call(lambda: folder.CreateFolder(text), "writing the lease of guest '%s'" % guest.name,
                               GuestNotFoundError)
            self._lease_text[guest.id] = (child, text)
        except Exception:
            self._lease_held.pop(guest.id, None)
            self._destroy(folder, "removing the half-written lease of guest '%s'" % guest.name)
            raise
        return True

    def leases_taken(self, guests: List[Guest]) -> None:
        """Read the guests again now that no other run acts on them (one call for all): what the lookup
        read before may be another run's past (its snapshot, its revert's power state)."""
        props = self._read_vms([g.handle for g in guests], 'reading the guests again under their leases')
        for guest in guests:
            if guest.id not in props:
                raise GuestNotFoundError("vmware guest '%s' (id %s) has gone" % (guest.name, guest.id))
            fresh = self._guest(guest.id, props[guest.id])
            guest.power_state, guest.provider_details = fresh.power_state, fresh.provider_details

    def write_lease(self, guest: Guest, text: Optional[str]) -> None:
        """Renew (``text``) or release (None) the lease this session holds."""
        if text is None:
            problems = self.release_leases([guest])
            if guest.id in problems:
                raise ProviderError("releasing the lease of guest '%s' failed: %s" % (guest.name, problems[guest.id]))
            return
        error = self.renew_leases([guest], text).get(guest.id)
        if error is not None:
            raise error

    def renew_leases(self, guests: List[Guest], text: str) -> Dict[str, SavepointError]:
        """Rename the lease child of each guest to ``text``, all tasks waited for together; guest id -> error
        (a lease found gone: it expired and another run took it over)."""
        starts = []
        errors: Dict[str, SavepointError] = {}
        for guest in guests:
            child, current = self._lease_text.get(guest.id, (None, None))
            if child is None or guest.id not in self._lease_held:
                errors[guest.id] = self._lost(guest)
            elif current != text:  # vSphere refuses a rename to the same name
                starts.append((guest, lambda child=child: child.Rename_Task(text),
                               "renewing the lease of guest '%s'" % guest.name))
        outcome = self._lease_tasks(starts)
        for guest, _start, _doing in starts:
            error = outcome[guest.id]
            if error is None:
                self._lease_text[guest.id] = (self._lease_text[guest.id][0], text)
            else:
                errors[guest.id] = self._lost(guest) if isinstance(error, GuestNotFoundError) else error
        # A renamed child proves nothing on its own: vcsim leaves the children of a destroyed folder in
        # place. The lease is this run's only while its mutex folder still holds that child, after the rename.
        renamed = [g for g, _start, _doing in starts if g.id not in errors]
        for guest in self._lease_missing(renamed):
            errors[guest.id] = self._lost(guest)
        return errors

    def _lease_missing(self, guests: List[Guest]) -> List[Guest]:
        """The guests whose mutex folder is gone or no longer holds this run's lease child (one call)."""
        if not guests:
            return []
        try:
            found = self._retrieve([self._lease_held[g.id] for g in guests], sdk.vim.Folder, ['childEntity'],
                                   'checking the leases of %d guests' % len(guests))
        except GuestNotFoundError:  # one of them is gone, which fails the whole call: look one by one
            if len(guests) == 1:
                return guests
            return [g for g in guests if self._lease_missing([g])]
        missing = []
        for guest in guests:
            # pylint: disable=protected-access
            children = found.get(self._lease_held[guest.id]._moId, {}).get('childEntity') or []
            if self._lease_text[guest.id][0]._moId not in [c._moId for c in children]:
                missing.append(guest)
        return missing

    def release_leases(self, guests: List[Guest]) -> Dict[str, str]:
        """Destroy the mutex folder of each guest this session holds, all tasks waited for together; guest
        id -> why it could not be (a folder already gone is released: another run removed it)."""
        starts = []
        for guest in guests:
            folder = self._lease_held.pop(guest.id, None)
            self._lease_text.pop(guest.id, None)
            if folder is not None:
                starts.append((guest, folder.Destroy_Task, "releasing the lease of guest '%s'" % guest.name))
        return {gid: error.msg for gid, error in self._lease_tasks(starts).items()
                if error is not None and not isinstance(error, GuestNotFoundError)}

    @staticmethod
    def _lost(guest: Guest) -> ProviderError:
        return ProviderError("guest '%s': the lease of this run is gone (it expired and another run took it "
                             "over); nothing more is written" % guest.name)

    def _lease_tasks(self, starts: List[Tuple[Guest, Callable[[], Any], str]]) -> Dict[str, Optional[SavepointError]]:
        """Start every task, then wait for all of them at once (one property collector): guest id -> error."""
        outcome: Dict[str, Optional[SavepointError]] = {}
        ops = []
        for guest, start, doing in starts:
            try:
                task = self._call(start, doing, GuestNotFoundError)
            except SavepointError as exc:
                outcome[guest.id] = exc
                continue
            ops.append((guest, doing, Operation(action='lease', guest=guest, snapshot_name='', handle=task,
                                                id=task._moId)))  # pylint: disable=protected-access
        if ops:
            policy = WaitPolicy(timeout=HTTP_TIMEOUT)
            try:
                self._task_waiter().wait([op for _g, _d, op in ops], time.monotonic() + HTTP_TIMEOUT, policy)
            except WaitTimeoutError:
                pass   # each unfinished task says so below
        for guest, doing, op in ops:
            error = op.error if op.done else ProviderError('%s: the task did not end within %ds' % (
                doing, HTTP_TIMEOUT))
            if error is not None and not isinstance(error, GuestNotFoundError):
                # the waiter words it as a snapshot task; say what it was (vSphere's message kept)
                not_found = 'ManagedObjectNotFound' == (error.details or {}).get('vsphere_fault')
                error = (GuestNotFoundError if not_found else ProviderError)(
                    '%s failed: %s' % (doing, error.provider_message or error.msg),
                    provider_message=error.provider_message, details=error.details)
            outcome[guest.id] = error
        return outcome

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The leases of one run (one run at a time per VM, _locking.py) as ONE entry per run and datacenter.

Layout, in the VM folder of each VM's datacenter::

    savepoint.virt leases/                  the registry (made on first use, never removed)
        spl1 <expires> <since> <run> <who>  one entry per run: a folder named with the lease text
            vm-12 vm-13 vm-40 ...           its children name the VMs it covers (moids, 80 characters each)

The entries protocol (``lease_entries``, _locking.py): a run writes its whole entry, and only then reads
every entry of the registry; it holds its VMs if no other run's live entry names one of them. Of two runs
whose sets overlap at least one sees the other: each writes before it reads, and the inventory is
linearizable (vCenter's, and vcsim's, where every call runs under the objects' locks), so if the first run's
read missed the second's entry, the second's read came after the first's entry was complete. A reader that
sees an entry still being written sees part of its VMs; the same argument covers it, because each run
reads only after its own entry is complete. A run that sees another's live entry removes its own and
waits, as with libvirt's registers, but nothing is overwritten (every run writes its own folder), so no
settle time is needed.

Why this and not a register or a folder per VM:

- A register on the VM (custom attribute, ``extraConfig``) has no compare-and-set that vcsim honours, and
  vcsim *appends* on ``SetField`` and ``extraConfig`` keys instead of replacing them
  (simulator/custom_fields_manager.go, virtual_machine.go applyExtraConfig).
- A mutex folder per VM (``CreateFolder`` refuses a second name with DuplicateName) costs three calls per
  VM (take it, write its text, remove it): at 1,000 VMs 3,000 calls, several seconds, more than the
  snapshots themselves. An entry costs one ``CreateFolder`` per run plus one per 80 characters of moids
  (about ten VMs), one ``Rename_Task`` to renew it and one ``Destroy_Task`` to release it, whatever the count.

A stale entry (its lease expired: the run died or was cut off) does not count; the run that finds it
removes it by the moid it read, and only while its name is still the one read. A holder whose entry was
removed finds it gone at its next renewal and stops. A VM revert does not touch folders. The datacenter of
each VM comes from the ``parent`` read with the lookup (one walk per folder, not per VM).

Privileges: Folder.Create, Folder.Rename and Folder.Delete on the datacenter's VM folder. Where folders
cannot be made (an ESXi host without vCenter) the claim raises UnsupportedError and the run goes on
unlocked, with a warning.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._errors import GuestNotFoundError, ProviderError, SavepointError, UnsupportedError, WaitTimeoutError
from ..._model import Guest
from ..._waiting import Operation, WaitPolicy
from . import sdk
from .session import HTTP_TIMEOUT, VmwareSession

REGISTRY_FOLDER = 'savepoint.virt leases'
#: vSphere's limit for an inventory name
NAME_LIMIT = 80


def moid_lists(moids: List[str]) -> List[str]:
    """The names of an entry's children: the moids in order, space-separated, at most NAME_LIMIT each."""
    names: List[str] = []
    line = ''
    for moid in sorted(set(moids)):
        if len(moid) > NAME_LIMIT or ' ' in moid:
            raise ProviderError("vmware: the moid %r cannot be written into a lease entry" % moid)
        if line and len(line) + 1 + len(moid) > NAME_LIMIT:
            names.append(line)
            line = ''
        line = moid if not line else line + ' ' + moid
    if line:
        names.append(line)
    return names


class VmwareLeases(VmwareSession):
    """The entries protocol of _locking.py on a registry folder per datacenter (see the module docstring)."""

    supports_leases = True
    lease_entries = True
    lease_max_chars = NAME_LIMIT
    lease_settle_seconds = 0.0

    def __init__(self, connection: Dict[str, Any]) -> None:
        super().__init__(connection)
        self._lease_parents: Dict[str, Any] = {}  # guest id or parent folder moid -> the datacenter's VM folder
        self._registries: Dict[str, Any] = {}     # VM folder moid -> its registry folder
        self._entries: Dict[str, Tuple[Any, str, List[str]]] = {}  # VM folder moid -> (this run's entry, its
        #                                                            name, the guest ids it covers)
        self._read_entries: Dict[str, Any] = {}   # name -> another run's entry, as the last read found it

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

    def _lease_key(self, guest: Guest) -> str:
        """The moid of the VM folder whose registry holds the guest's lease (this run's entry is per key)."""
        return self._lease_parent(guest)._moId  # pylint: disable=protected-access

    def _find_child(self, parent: Any, name: str, doing: str) -> Any:
        return self._call(lambda: self.content.searchIndex.FindChild(parent, name), doing, GuestNotFoundError)

    def _by_parent(self, guests: List[Guest]) -> Dict[str, Tuple[Any, List[Guest]]]:
        """VM folder moid -> (that VM folder, the guests of its datacenter)."""
        groups: Dict[str, Tuple[Any, List[Guest]]] = {}
        for guest in guests:
            groups.setdefault(self._lease_key(guest), (self._lease_parent(guest), []))[1].append(guest)
        return groups

    def _registry(self, parent: Any, make: bool) -> Any:
        """The registry folder of a datacenter (made when ``make`` and missing; None when not made)."""
        key = parent._moId  # pylint: disable=protected-access
        if key in self._registries:
            return self._registries[key]
        doing = 'finding the lease registry %r' % REGISTRY_FOLDER
        found = self._find_child(parent, REGISTRY_FOLDER, doing)
        if found is None and make:
            try:
                found = self._create(parent, REGISTRY_FOLDER, 'making the lease registry %r' % REGISTRY_FOLDER)
            except ProviderError as exc:
                if (exc.details or {}).get('vsphere_fault') != 'DuplicateName':
                    raise
                found = self._find_child(parent, REGISTRY_FOLDER, doing)   # another run made it just now
        if found is not None:
            self._registries[key] = found
        return found

    def _create(self, parent: Any, name: str, doing: str) -> Any:
        try:
            return self._call(lambda: parent.CreateFolder(name), doing, GuestNotFoundError)
        except UnsupportedError as exc:
            raise UnsupportedError("this vSphere server cannot create the lease folder %r (%s)"
                                   % (name, exc.provider_message or exc.msg))

    def _destroy(self, folder: Any, doing: str) -> None:
        """Destroy one lease folder (the rare paths: a left entry of this run, a half-written one), waited for
        like every other lease task: by the task waiter, under its deadline."""
        error = self._lease_tasks([(Guest(id='folder', name='folder'), folder.Destroy_Task, doing)]).get('folder')
        if error is not None and not isinstance(error, GuestNotFoundError):  # gone already: what we wanted
            raise error

    # -- the entries protocol -------------------------------------------------------------
    def claim_leases(self, guests: List[Guest], text: str) -> Dict[str, List[str]]:
        """Write this run's entry for ``guests`` (one per datacenter), then read the registries: guest id ->
        the names (lease texts) of the other entries that cover it. On any error the entries written here
        are removed again before it is raised (the keeper holds nothing yet, so it would not release them)."""
        try:
            return self._claim(guests, text)
        except BaseException:
            self._release_entries(sorted(self._entries))
            raise

    def _claim(self, guests: List[Guest], text: str) -> Dict[str, List[str]]:
        for key, (parent, group) in sorted(self._by_parent(guests).items()):
            if key in self._entries:
                raise ProviderError('vmware: this run already holds a lease entry in the datacenter of guest '
                                    "'%s'; release it first" % group[0].name)
            registry = self._registry(parent, make=True)
            doing = "taking the leases of %d guests (first '%s')" % (len(group), group[0].name)
            try:
                entry = self._create(registry, text, doing)
            except ProviderError as exc:
                if (exc.details or {}).get('vsphere_fault') != 'DuplicateName':
                    raise
                # An entry of this run (the run id is in the name) that an earlier release could not remove
                # (None: it went between the create and the lookup).
                left = self._find_child(registry, text, doing)
                if left is not None:
                    self._destroy(left, doing)
                entry = self._create(registry, text, doing)
            self._entries[key] = (entry, text, [g.id for g in group])
            try:
                for name in moid_lists([g.id for g in group]):
                    self._call(lambda name=name: entry.CreateFolder(name), doing, GuestNotFoundError)
            except Exception:
                self._entries.pop(key, None)
                self._destroy(entry, 'removing the half-written lease entry %r' % text)
                raise
        return self._others(guests, make=True)

    def other_leases(self, guests: List[Guest]) -> Dict[str, List[str]]:
        """Read only (check mode): guest id -> the names of the other runs' entries that cover it."""
        return self._others(guests, make=False)

    def _others(self, guests: List[Guest], make: bool) -> Dict[str, List[str]]:
        groups = self._by_parent(guests)
        registries = [r for r in (self._registry(parent, make) for parent, _group in groups.values()) if r]
        covering = self._read_registries(registries)
        mine = {entry._moId for entry, _text, _ids in self._entries.values()}  # pylint: disable=protected-access
        others: Dict[str, List[str]] = {}
        for guest in guests:
            names = [name for moid, name in covering.get(guest.id, []) if moid not in mine]
            if names:
                others[guest.id] = sorted(names)
        return others

    def _read_registries(self, registries: List[Any]) -> Dict[str, List[Tuple[str, str]]]:
        """One read of every entry and its children: VM moid -> [(entry moid, entry name)]."""
        if not registries:
            return {}
        pcq = sdk.vmodl.query.PropertyCollector
        walk = pcq.TraversalSpec(name='lease-entries', type=sdk.vim.Folder, path='childEntity', skip=False,
                                 selectSet=[pcq.SelectionSpec(name='lease-entries')])
        spec = pcq.FilterSpec(objectSet=[pcq.ObjectSpec(obj=r, skip=True, selectSet=[walk]) for r in registries],
                              propSet=[pcq.PropertySpec(type=sdk.vim.Folder, pathSet=['name', 'parent'])])
        found = self._collect(spec, 'reading the lease registry')
        # pylint: disable=protected-access
        tops = {r._moId for r in registries}
        entries = {moid: props for moid, props in found.items()
                   if props.get('parent') is not None and props['parent']._moId in tops}
        self._read_entries = {props['name']: props['_obj'] for props in entries.values()}
        covering: Dict[str, List[Tuple[str, str]]] = {}
        for props in found.values():
            parent = props.get('parent')
            if parent is None or parent._moId not in entries:
                continue
            entry = entries[parent._moId]
            for moid in str(props.get('name') or '').split():
                covering.setdefault(moid, []).append((parent._moId, entry['name']))
        return covering

    def drop_leases(self, names: List[str]) -> None:
        """Remove the other runs' entries of these names (stale: they expired), by the moids the last read
        found and only while each still has the name read (one that was renewed since is left alone)."""
        objs = [self._read_entries[name] for name in names if name in self._read_entries]
        if not objs:
            return
        try:
            now = self._retrieve(objs, sdk.vim.Folder, ['name'], 'reading %d stale lease entries' % len(objs))
        except GuestNotFoundError:  # one of them is gone already, which fails the whole read: one by one
            now = {}
            for obj in objs:
                try:
                    now.update(self._retrieve([obj], sdk.vim.Folder, ['name'], 'reading a stale lease entry'))
                except GuestNotFoundError:
                    pass
        starts = []
        for name in names:
            obj = self._read_entries.get(name)
            if obj is not None and now.get(obj._moId, {}).get('name') == name:  # pylint: disable=protected-access
                starts.append((Guest(id=name, name=name), obj.Destroy_Task, 'removing the stale lease %r' % name))
        for name, error in self._lease_tasks(starts).items():
            if error is not None and not isinstance(error, GuestNotFoundError):
                raise error

    def leases_taken(self, guests: List[Guest]) -> None:
        """Read the guests again now that no other run acts on them (one call for all): what the lookup
        read before may be another run's past (its snapshot, its revert's power state)."""
        props = self._read_vms([g.handle for g in guests], 'reading the guests again under their leases', again=True)
        for guest in guests:
            if guest.id not in props:
                raise GuestNotFoundError("vmware guest '%s' (id %s) has gone" % (guest.name, guest.id))
            fresh = self._guest(guest.id, props[guest.id])
            guest.power_state, guest.provider_details = fresh.power_state, fresh.provider_details

    def renew_leases(self, guests: List[Guest], text: str) -> Dict[str, SavepointError]:
        """Rename this run's entries that cover ``guests`` to ``text``, all tasks waited for together; guest
        id -> error (an entry found gone: it expired and another run removed it)."""
        keys = sorted({self._lease_key(g) for g in guests})
        errors: Dict[str, SavepointError] = {}
        for guest in guests:
            if self._lease_key(guest) not in self._entries:
                errors[guest.id] = self._lost(guest)
        held = [k for k in keys if k in self._entries]
        starts = [(Guest(id=k, name=k), lambda k=k: self._entries[k][0].Rename_Task(text),
                   'renewing the lease entry of %d guests' % len(self._entries[k][2]))
                  for k in held if self._entries[k][1] != text]  # vSphere refuses a rename to the same name
        outcome = self._lease_tasks(starts)
        for key in held:
            if outcome.get(key) is None:
                entry, _old, ids = self._entries[key]
                self._entries[key] = (entry, text, ids)
        # A renamed entry proves nothing on its own: it must still be in its registry after the rename.
        present = self._still_registered([k for k in held if outcome.get(k) is None])
        for key in held:
            error = outcome.get(key)
            if error is None and key in present:
                continue
            for guest in guests:
                if self._lease_key(guest) == key:
                    errors[guest.id] = (self._lost(guest) if error is None or isinstance(error, GuestNotFoundError)
                                        else error)
        return errors

    def _still_registered(self, keys: List[str]) -> set:
        """The VM folder moids whose registry still holds this run's entry (one call)."""
        if not keys:
            return set()
        try:
            found = self._retrieve([self._registries[k] for k in keys], sdk.vim.Folder, ['childEntity'],
                                   'checking %d lease entries' % len(keys))
        except GuestNotFoundError:  # a registry removed by hand: no entry of this run is in it
            return set()
        present = set()
        # pylint: disable=protected-access
        for key in keys:
            children = found.get(self._registries[key]._moId, {}).get('childEntity') or []
            if self._entries[key][0]._moId in [c._moId for c in children]:
                present.add(key)
        return present

    def release_leases(self, guests: List[Guest]) -> Dict[str, str]:
        """Destroy this run's entries that cover ``guests`` (the whole entry: the keeper releases all its
        guests at once), all tasks waited for together; guest id -> why it could not be (an entry already
        gone is released: another run removed it)."""
        key_of = {g.id: self._lease_key(g) for g in guests}
        problems = self._release_entries(sorted(set(key_of.values())))
        return {gid: problems[key] for gid, key in key_of.items() if key in problems}

    def _release_entries(self, keys: List[str]) -> Dict[str, str]:
        """Destroy this run's entries in these datacenters (VM folder moids), waited for together: key -> why
        one could not be."""
        starts = []
        for key in keys:
            if key in self._entries:
                entry, _text, ids = self._entries.pop(key)
                starts.append((Guest(id=key, name=key), entry.Destroy_Task,
                               'releasing the lease entry of %d guests' % len(ids)))
        return {key: error.msg for key, error in self._lease_tasks(starts).items()
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

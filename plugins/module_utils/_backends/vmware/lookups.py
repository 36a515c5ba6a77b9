# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding virtual machines by name, folder, BIOS/instance UUID or moid, one guest or many at once.

Every lookup is a constant number of calls whatever the inventory size: SearchIndex
for a UUID and an inventory path, a direct reference for a moid, and one
property-collector retrieval of names only for a bare name.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from ..._backend import pick_one
from ..._errors import GuestNotFoundError
from ..._model import Guest, GuestRef
from . import sdk
from .sdk import POWER, translate
from .session import VmwareSession


class VmwareLookups(VmwareSession):
    """Guest lookups on top of the session."""

    def _names(self) -> Dict[str, Dict[str, Any]]:
        """Every VM's name in ONE retrieval through a container view (names only)."""
        pcq = sdk.vmodl.query.PropertyCollector
        root = self._dc.vmFolder if self._dc is not None else self.content.rootFolder
        view = self._call(lambda: self.content.viewManager.CreateContainerView(root, [sdk.vim.VirtualMachine], True),
                          'listing virtual machines')
        try:
            spec = pcq.FilterSpec(
                objectSet=[pcq.ObjectSpec(obj=view, skip=True, selectSet=[
                    pcq.TraversalSpec(name='view', path='view', skip=False, type=sdk.vim.view.ContainerView)])],
                propSet=[pcq.PropertySpec(type=sdk.vim.VirtualMachine, pathSet=['name'])])
            return self._collect(spec, 'listing virtual machine names')
        finally:
            try:
                view.DestroyView()
            except Exception:  # the view dies with the session anyway
                pass

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
            return [sdk.vim.VirtualMachine(ref.id, self._stub())]
        if ref.uuid:
            for instance in (False, True):
                found = self._by_uuid(index, ref, instance)
                if found:
                    return found
            return []
        for path in self._folder_path(ref.folder or '', ref.name or ''):
            found = self._call(lambda path=path: index.FindByInventoryPath(path),
                               'looking up guest %s' % ref.describe(), GuestNotFoundError)
            if isinstance(found, sdk.vim.VirtualMachine):
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
            except sdk.vmodl.fault.MethodNotFound:
                self._no_find_all = True
            except Exception as exc:  # every fault and network error becomes an engine error
                raise translate(exc, doing, GuestNotFoundError)
        found = self._call(lambda: index.FindByUuid(datacenter=self._dc, uuid=ref.uuid, vmSearch=True,
                                                    instanceUuid=instance), doing, GuestNotFoundError)
        return [found] if found is not None else []

    def _guest(self, moid: str, props: Dict[str, Any]) -> Guest:
        self._props[moid] = props
        if all(path in props for path in self._static_props):
            self._static[moid] = {path: props[path] for path in self._static_props}
        return Guest(id=moid, name=props.get('name', moid),
                     power_state=POWER.get(str(props.get('runtime.powerState')), 'unknown'), handle=props['_obj'],
                     # vSphere's own flag: a removal left delta disks behind that need ConsolidateVMDisks_Task
                     provider_details={'consolidation_needed': bool(props.get('runtime.consolidationNeeded'))})

    def find_guest(self, ref: GuestRef) -> Guest:
        return self.find_guests([ref])[0]

    def find_guests(self, refs: List[GuestRef]) -> List[Guest]:
        """All refs with one name scan (if any bare names) and one property retrieval."""
        for ref in refs:
            ref.validate()
        located: List[List[Any]] = []
        # by identity: ``ref in a_list`` compares dataclasses field by field, n^2 / 2 times for n refs
        bare = {id(ref) for ref in refs if ref.name and not ref.folder and not ref.id and not ref.uuid}
        by_name: Dict[str, List[Any]] = {}
        if bare:
            for moid, props in self._names().items():
                by_name.setdefault(props.get('name'), []).append(props['_obj'])
        for ref in refs:
            located.append(by_name.get(ref.name, []) if id(ref) in bare else self._locate(ref))
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
            # No trees: a run that acts reads them again under its leases anyway (leases_taken), others
            # when the first guest's snapshots are listed (_read_trees). ``parent``: where the lease of a
            # run that acts on the guest goes (lease.py), read here at no cost.
            return self._read_vms(vms, 'reading guests', trees=False, extra=('parent', 'parentVApp'))
        except GuestNotFoundError:
            # A moid that does not exist fails the whole retrieval: find out which one.
            for ref in refs:
                if ref.id:
                    try:
                        self._retrieve([sdk.vim.VirtualMachine(ref.id, self._stub())], sdk.vim.VirtualMachine, ['name'],
                                       'reading guest %s' % ref.describe())
                    except GuestNotFoundError as exc:
                        raise GuestNotFoundError('vmware guest %s not found on %s' % (ref.describe(), self.endpoint),
                                                 provider_message=exc.provider_message,
                                                 details={'guest': ref.describe()})
            raise

    def list_guests(self) -> List[Guest]:
        vms = [props['_obj'] for props in self._names().values()]
        props = self._read_vms(vms, 'reading guests', trees=False)
        return [self._guest(moid, p) for moid, p in sorted(props.items(), key=lambda kv: kv[1].get('name', ''))]

    def _fresh_props(self, guest: Guest) -> Optional[Dict[str, Any]]:
        """The guest's properties when they were read after this run's last write on it ended, else None."""
        props = self._props.get(guest.id)
        return props if props is not None and props.get('_fresh') else None

    def refresh_guest(self, guest: Guest) -> Guest:
        props = self._fresh_props(guest)
        if props is None:
            found = self._read_vms([guest.handle], "reading guest '%s'" % guest.name, trees=False)
            if guest.id not in found:
                raise GuestNotFoundError("vmware guest '%s' (id %s) has gone" % (guest.name, guest.id))
            props = found[guest.id]
        return self._guest(guest.id, props)

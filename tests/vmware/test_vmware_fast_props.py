"""Property retrievals parsed by ElementTree (fast_props) against pyVmomi's own parse, on vcsim's answers.

Every comparison is of the same server state read both ways, object by object: types, values, list
types, and managed object references bound to the session's stub. Where the converter does not know
what it reads (a task's fault, a changed answer), pyVmomi must have parsed it: ``fallbacks`` counts that.
"""

from __future__ import annotations

from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from ansible_collections.savepoint.virt.plugins.module_utils._backends.vmware import fast_props, sdk

pytestmark = pytest.mark.vmware

PCQ = vmodl.query.PropertyCollector
#: what the backend reads (sdk) and, for breadth, large parts of a VM it never reads
PATHS = sdk.GUEST_PROPS + sdk.LAYOUT_PROPS + ['parent', 'parentVApp', 'config', 'summary', 'runtime', 'guest',
                                              'layoutEx', 'storage', 'datastore', 'network']


def plain(value: Any, stub: Any) -> Any:
    """A value as nested tuples of type names and contents (a reference: its type, moid, whose stub)."""
    if isinstance(value, VmomiSupport.ManagedObject):
        return ('ref', type(value).__name__, value._moId, value._stub is stub)  # pylint: disable=protected-access
    if isinstance(value, VmomiSupport.DataObject):
        return (type(value).__name__, tuple((k, plain(v, stub)) for k, v in sorted(vars(value).items())))
    if isinstance(value, list):
        return (type(value).__name__, tuple(plain(item, stub) for item in value))
    return (type(value).__name__, value)


def spec_for(objects: Any, obj_type: Any, paths: Any) -> Any:
    return PCQ.FilterSpec(objectSet=[PCQ.ObjectSpec(obj=o, skip=False) for o in objects],
                          propSet=[PCQ.PropertySpec(type=obj_type, pathSet=list(paths))])


@pytest.fixture
def session(backend):
    collector = backend._property_collector  # pylint: disable=protected-access
    assert isinstance(collector, fast_props.FastCollector)
    return backend, collector, backend.content.propertyCollector, backend.si._stub


def test_vm_reads_are_what_pyvmomi_reads(inventory, session):
    backend, fast, real, stub = session
    with_tree, without = inventory.new_vm(), inventory.new_vm(power_on=False)
    WaitForTask(with_tree.CreateSnapshot_Task(name='root', description='first', memory=True, quiesce=False))
    WaitForTask(with_tree.CreateSnapshot_Task(name='child', description='second <&>', memory=False,
                                              quiesce=False))
    spec = spec_for([with_tree, without], vim.VirtualMachine, PATHS)
    expected = real.RetrievePropertiesEx([spec], PCQ.RetrieveOptions())
    got = fast.RetrievePropertiesEx([spec], PCQ.RetrieveOptions())
    assert fast.fallbacks == 0
    assert plain(got, stub) == plain(expected, stub)
    # not two empty answers alike: the tree and the references are there, bound to this session
    props = {item.obj._moId: {p.name: p.val for p in item.propSet} for item in got.objects}
    tree = props[with_tree._moId]['snapshot']
    root = tree.rootSnapshotList[0]
    assert (root.name, root.childSnapshotList[0].name, root.childSnapshotList[0].description) == (
        'root', 'child', 'second <&>')
    assert isinstance(root.snapshot, vim.vm.Snapshot) and root.snapshot._stub is stub
    assert tree.currentSnapshot._moId == root.childSnapshotList[0].snapshot._moId
    assert props[without._moId]['runtime.powerState'] == vim.VirtualMachinePowerState.poweredOff
    assert props[with_tree._moId]['layoutEx.file'] and props[with_tree._moId]['config'].hardware.device


def test_paged_reads_are_what_pyvmomi_reads(inventory, session):
    """vcsim answers in one page whatever maxObjects says; a token it does not know is a fault both ways."""
    _backend, fast, real, stub = session
    vms = [inventory.new_vm() for _index in range(3)]
    spec = spec_for(vms, vim.VirtualMachine, sdk.GUEST_PROPS)
    pages = []
    for collector in (real, fast):
        result = collector.RetrievePropertiesEx([spec], PCQ.RetrieveOptions(maxObjects=1))
        got = [result]
        while result.token:
            result = collector.ContinueRetrievePropertiesEx(result.token)
            got.append(result)
        pages.append([plain(page.objects, stub) for page in got])
    assert pages[0] == pages[1] and fast.fallbacks == 0
    assert sum(len(page[1]) for page in pages[1]) == 3
    faults = []
    for collector in (real, fast):
        with pytest.raises(vmodl.MethodFault) as err:
            collector.ContinueRetrievePropertiesEx('no-such-token')
        faults.append(plain(err.value, stub))
    assert faults[0] == faults[1]


def test_a_task_fault_is_parsed_by_pyvmomi_and_a_read_fault_raised_as_pyvmomi_raises_it(inventory, session):
    _backend, fast, real, stub = session
    vm = inventory.new_vm()
    failed = vm.PowerOnVM_Task()   # already on: the task fails with a fault in info.error
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(failed)
    ok = vm.CreateSnapshot_Task(name='ok', memory=False, quiesce=False)
    WaitForTask(ok)
    spec = spec_for([failed, ok], vim.Task, ['info.state', 'info.error', 'info.result'])
    expected = real.RetrievePropertiesEx([spec], PCQ.RetrieveOptions())
    got = fast.RetrievePropertiesEx([spec], PCQ.RetrieveOptions())
    assert fast.fallbacks == 1   # the fault inside info.error: left to pyVmomi
    assert plain(got, stub) == plain(expected, stub)
    errors = [p.val for item in got.objects for p in item.propSet if p.name == 'info.error']
    assert any(isinstance(e, vim.fault.InvalidPowerState) and e.msg for e in errors)

    gone = spec_for([vim.VirtualMachine('vm-does-not-exist', stub)], vim.VirtualMachine, ['name'])
    for collector in (real, fast):
        with pytest.raises(vmodl.fault.ManagedObjectNotFound):
            collector.RetrievePropertiesEx([gone], PCQ.RetrieveOptions())
    # the connection and the session outlive the fault
    again = fast.RetrievePropertiesEx([spec_for([vm], vim.VirtualMachine, ['name'])], PCQ.RetrieveOptions())
    assert again.objects[0].propSet[0].val == vm.name


def test_an_answer_the_converter_does_not_know_is_parsed_by_pyvmomi_from_the_same_bytes(
        inventory, session, monkeypatch):
    _backend, fast, real, stub = session
    vm = inventory.new_vm()
    spec = spec_for([vm], vim.VirtualMachine, ['name', 'runtime.powerState'])
    answers = []
    real_send = fast.send

    def changed(*args):
        status, body = real_send(*args)
        # the same answer with the XML Schema namespace under a prefix fast_props does not map
        body = body.replace(b'xmlns:xsd=', b'xmlns:xs=').replace(b'"xsd:', b'"xs:')
        answers.append(body)
        return status, body
    monkeypatch.setattr(fast, 'send', changed)
    got = fast.RetrievePropertiesEx([spec], PCQ.RetrieveOptions())
    assert len(answers) == 1 and b'"xs:string"' in answers[0]   # one request, its answer changed
    assert fast.fallbacks == 1
    expected = real.RetrievePropertiesEx([spec], PCQ.RetrieveOptions())
    assert plain(got, stub) == plain(expected, stub)
    with pytest.raises(fast_props.Unsupported):
        fast_props.Converter(stub).parse(answers[0], PCQ.RetrieveResult)
    info = PCQ._GetMethodInfo('RetrievePropertiesEx')  # pylint: disable=protected-access
    assert plain(SoapAdapter.SoapResponseDeserializer(stub).Deserialize(answers[0], info.result), stub) == \
        plain(expected, stub)


def test_a_stub_that_is_not_pyvmomis_soap_stub_keeps_the_real_collector(backend):
    class Other:
        pass
    assert fast_props.property_collector(backend.content, Other()) is backend.content.propertyCollector

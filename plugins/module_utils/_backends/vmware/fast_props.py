# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property retrievals whose answers are parsed by ElementTree's C parser instead of pyVmomi's.

Why: pyVmomi parses every answer with expat and Python callbacks per XML element. For the reads of a
1,000-guest task (snapshot trees, file layouts, task states: about 4 MB each) that was half of the
module's CPU. Here the body is parsed into an ElementTree and turned into the *same* pyVmomi objects,
typed by pyVmomi's own schema (property types, xsi:type, enums, dates, managed object references bound
to the session's stub): callers get what ``PropertyCollector.RetrievePropertiesEx`` returns, about four
times faster (tests/vmware/test_vmware_fast_props.py compares both on vcsim answers).

Safety: only an HTTP 200 answer made of what this converter knows is converted here. A fault (HTTP 500)
is parsed and raised by pyVmomi's own deserializer, and anything else this converter does not know (a
fault inside a value, an unknown namespace prefix, tag, property, type or enum value, a server GUID) makes
pyVmomi parse the same bytes: a request is never sent twice. Requests are serialized by pyVmomi and sent
through its stub's connection pool and session cookie as ``SoapStubAdapter.InvokeMethod`` does
(transport.py; pyVmomi has no call that hands back an answer's bytes).
Any other stub (or a test's fake collector) is used as it is.
"""

from __future__ import annotations

import base64
import functools
import gc
from datetime import datetime
from typing import Any, Callable, Dict, List, Tuple
from xml.etree import ElementTree

from . import sdk, transport

_VIM = 'urn:vim25'
_VIM_TAG = '{%s}' % _VIM
_RETURNVAL = _VIM_TAG + 'returnval'
_XSI_TYPE = '{http://www.w3.org/2001/XMLSchema-instance}type'
_SOAP_BODY = '{http://schemas.xmlsoap.org/soap/envelope/}Body'
#: xsi:type prefixes as vSphere and vcsim declare them; any other prefix is left to pyVmomi's parser
_PREFIXES = {'': _VIM, 'xsd': 'http://www.w3.org/2001/XMLSchema', 'vim25': _VIM}
_LIST, _MANAGED, _DATA, _FAULT, _PRIMITIVE = ('list', 'managed', 'data', 'fault', 'primitive')


class Unsupported(Exception):
    """The answer holds something this converter does not handle: pyVmomi parses it instead."""


def property_collector(content: Any, stub: Any) -> Any:
    """The session's property collector, with fast retrievals where the stub is pyVmomi's SOAP stub."""
    collector = content.propertyCollector
    if type(stub) is sdk.SoapAdapter.SoapStubAdapter:  # pylint: disable=unidiomatic-typecheck  # its transport is mirrored
        return FastCollector(collector, stub)
    return collector


class FastCollector:
    """A ``vmodl.query.PropertyCollector`` whose two retrieval methods parse in C; the rest is the real one's."""

    def __init__(self, collector: Any, stub: Any) -> None:
        self._collector = collector
        self._converter = Converter(stub)
        self.fallbacks = 0   # answers pyVmomi had to parse (tests look at it)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collector, name)

    @staticmethod
    def send(stub: Any, collector: Any, info: Any, args: List[Any]) -> Tuple[int, bytes]:
        """(status, body) of one call (tests wrap it to count calls)."""
        return transport.post(stub, collector, info, args)

    def RetrievePropertiesEx(self, specSet: List[Any], options: Any) -> Any:  # pylint: disable=invalid-name  # pyVmomi's
        return self._invoke('RetrievePropertiesEx', [specSet, options])

    def ContinueRetrievePropertiesEx(self, token: str) -> Any:  # pylint: disable=invalid-name
        return self._invoke('ContinueRetrievePropertiesEx', [token])

    def _invoke(self, method: str, args: List[Any]) -> Any:
        info = type(self._collector)._GetMethodInfo(method)  # pylint: disable=protected-access
        status, body = self.send(self._converter.stub, self._collector, info, args)
        return self.answer(status, body, info)

    def answer(self, status: int, body: bytes, info: Any) -> Any:
        """An answer as the method's result, parsed here when it can be, else by pyVmomi; a fault raised."""
        if status == 200:
            try:
                return self._converter.parse(body, info.result)
            except Unsupported:
                self.fallbacks += 1
        result = sdk.SoapAdapter.SoapResponseDeserializer(self._converter.stub).Deserialize(body, info.result)
        if status == 200:
            return result
        if isinstance(result, Exception):
            raise result
        # a server error, not a broken connection (pyVmomi raises a plain Exception here)
        raise sdk.vmodl.RuntimeFault(msg='HTTP 500 from vSphere without a fault in its body')


class Converter:
    """An answer's ElementTree as pyVmomi objects, as SoapAdapter's deserializer would build them."""

    def __init__(self, stub: Any) -> None:
        self.stub = stub
        support = sdk.VmomiSupport
        self._support = support
        #: declared types whose xsi:type pyVmomi ignores (SoapAdapter.isDynamicType)
        self._dynamic = (support.ManagedMethod, support.PropertyPath, type)
        #: values that name a type or a method: looked up by pyVmomi in ways not mirrored here
        self._names = (support.ManagedMethod, type)
        self._text: Dict[Any, Callable[[str], Any]] = {
            bool: _bool, str: str, datetime: self._datetime,
            support.binary: lambda text: support.binary(base64.b64decode(text))}
        self._types: Dict[str, type] = {}
        self._kinds: Dict[type, str] = {}
        self._props: Dict[type, Dict[str, Tuple[str, type, bool, Any]]] = {}   # type -> tag -> _prop
        self._defaults: Dict[type, Tuple[Dict[str, Any], Tuple[Tuple[str, type], ...]]] = {}

    def parse(self, body: bytes, result_type: type) -> Any:
        """The answer's ``returnval`` as objects of ``result_type`` (None when there is none).

        The cyclic garbage collector is paused meanwhile: the tree and the objects made from it hold no
        cycles, and the collections their allocations would trigger (each a walk over every object of the
        process, pyVmomi's type tables included) cost as much as the parse itself (0.2-0.4 s of 0.6 s
        for an answer of 3.7 MB about 1,000 VMs)."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._parse(body, result_type)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise Unsupported(str(exc))   # pyVmomi parses it again and raises its own error if it is one
        finally:
            if collecting:
                gc.enable()

    def _parse(self, body: bytes, result_type: type) -> Any:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError as exc:
            raise Unsupported(str(exc))
        soap_body = root.find(_SOAP_BODY)
        if soap_body is None or len(soap_body) != 1:
            raise Unsupported('no single response in the SOAP body')
        values = list(soap_body[0])
        if any(v.tag != _RETURNVAL for v in values):
            raise Unsupported('unexpected element in the response')
        if self._kind(result_type) is _LIST:
            out = result_type()
            out.extend(self.value(v, result_type.Item) for v in values)
            return out
        if len(values) > 1:
            raise Unsupported('more than one returnval')
        return self.value(values[0], result_type) if values else None

    def value(self, elem: Any, ptype: type) -> Any:
        """One element as pyVmomi deserializes it against its declared type ``ptype``."""
        xsi = elem.get(_XSI_TYPE)
        if xsi is not None and ptype not in self._dynamic:
            dynamic = self._type(xsi)
            if not (self._kind(dynamic) is _LIST and self._kind(ptype) is _LIST):
                ptype = dynamic
        elif self._kind(ptype) is _LIST:
            ptype = ptype.Item
        kind = self._kind(ptype)
        if kind is _PRIMITIVE:
            return self._primitive(ptype, elem.text or '')
        if kind is _DATA:
            return self._data_object(elem, ptype)
        if kind is _MANAGED:
            if 'serverGuid' in elem.attrib:
                raise Unsupported('serverGuid')
            return self._type(elem.get('type') or '')(elem.text or '', self.stub)
        if kind is _LIST:
            out = ptype()
            item = ptype.Item
            out.extend(self.value(child, item) for child in elem)
            return out
        raise Unsupported('a fault in a value')   # pyVmomi wraps those (LocalizedMethodFault)

    def _data_object(self, elem: Any, ptype: type) -> Any:
        obj = self._new(ptype)
        attrs = obj.__dict__
        props = self._props.get(ptype)
        if props is None:
            props = self._props[ptype] = {}
        for child in elem:
            found = props.get(child.tag)
            if found is None:
                found = props[child.tag] = self._prop(ptype, child.tag)
            name, declared, is_list, text = found
            if text is not None and child.get(_XSI_TYPE) is None:
                attrs[name] = text(child.text or '')   # the common case: a plain string, number or flag
                continue
            val = self.value(child, declared)
            if is_list and not isinstance(val, list):
                attrs[name].append(val)
            else:
                attrs[name] = val   # typed by the schema as above: pyVmomi's CheckField would pass it
        return obj

    def _new(self, ptype: type) -> Any:
        """A DataObject with the values DataObject.__init__ gives it (a new list for each list property)."""
        cached = self._defaults.get(ptype)
        if cached is None:
            sample = vars(ptype())
            cached = ({k: v for k, v in sample.items() if not isinstance(v, list)},
                      tuple((k, type(v)) for k, v in sample.items() if isinstance(v, list)))
            self._defaults[ptype] = cached
        plain, lists = cached
        obj = ptype.__new__(ptype)
        attrs = obj.__dict__
        attrs.update(plain)
        for name, list_type in lists:
            attrs[name] = list_type()
        return obj

    def _prop(self, ptype: type, tag: str) -> Tuple[str, type, bool, Any]:
        """(attribute, declared type, whether it is a list, the text converter of a primitive) of child
        element ``tag`` of a ``ptype``."""
        if not tag.startswith(_VIM_TAG):
            raise Unsupported(tag)
        info = ptype._GetPropertyInfo(tag[len(_VIM_TAG):])  # pylint: disable=protected-access  # AttributeError: unknown
        declared = info.type
        text = None
        if self._kind(declared) is _PRIMITIVE and declared not in self._names:
            text = self._text_of(declared)
        return info.name, declared, self._kind(declared) is _LIST, text

    def _kind(self, ptype: type) -> str:
        kind = self._kinds.get(ptype)
        if kind is None:
            support = self._support
            if issubclass(ptype, list):
                kind = _LIST
            elif issubclass(ptype, support.ManagedObject):
                kind = _MANAGED
            elif issubclass(ptype, Exception) or ptype is support.GetVmodlType("vmodl.LocalizedMethodFault"):
                kind = _FAULT   # pyVmomi turns a LocalizedMethodFault into its fault, msg set: not mirrored
            elif issubclass(ptype, support.DataObject):
                kind = _DATA
            else:
                kind = _PRIMITIVE
            self._kinds[ptype] = kind
        return kind

    def _type(self, qname: str) -> type:
        """The pyVmomi type of an xsi:type or a reference's ``type`` (as SoapAdapter.LookupWsdlType)."""
        found = self._types.get(qname)
        if found is None:
            prefix, _sep, name = qname.rpartition(':')
            namespace = _PREFIXES.get(prefix)
            if namespace is None:
                raise Unsupported('xsi:type prefix %r' % prefix)
            support = self._support
            try:
                found = support.GetWsdlType(namespace, name)
            except KeyError:
                if not name.endswith('ManagedObjectReference'):
                    raise Unsupported('type %r' % qname)
                found = support.GetWsdlType(support.XMLNS_VMODL_BASE, name[:-len('Reference')])
            found = support.GetCompatibleType(found, self.stub.version)   # as pyVmomi's deserializer
            self._types[qname] = found
        return found

    def _primitive(self, ptype: type, text: str) -> Any:
        """Text as SoapAdapter's EndElementHandler turns it into a value."""
        if ptype in self._names:
            raise Unsupported('a type or method name')
        return self._text_of(ptype)(text)

    def _text_of(self, ptype: type) -> Callable[[str], Any]:
        """The function that turns an element's text into a ``ptype`` (a ValueError or an AttributeError,
        such as an enum value pyVmomi lacks, makes pyVmomi parse the answer: parse())."""
        convert = self._text.get(ptype)
        if convert is None:
            if issubclass(ptype, self._support.Enum):
                convert = functools.partial(getattr, ptype)
            else:
                convert = ptype   # the integer and float types, PropertyPath, URI
            self._text[ptype] = convert
        return convert

    def _datetime(self, text: str) -> datetime:
        parsed = self._support.Iso8601.ParseISO8601(text)
        if not parsed:
            raise Unsupported('datetime %r' % text)
        return parsed


def _bool(text: str) -> bool:
    lowered = text.lower()
    if text == '1' or lowered == 'true':
        return True
    if text == '0' or lowered == 'false':
        return False
    raise Unsupported('bool %r' % text)

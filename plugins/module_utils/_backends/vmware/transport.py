# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SOAP calls sent through pyVmomi's stub, split into sending and reading, so that several can be under way.

pyVmomi's ``SoapStubAdapter.InvokeMethod`` sends a request and waits for its answer in one step, so
1,000 task starts are 1,000 round trips one after the other: the client idles while the server works,
then the server idles while the client parses. ``invoke_many`` keeps up to ``width`` requests under way
on as many of the stub's pooled connections (one thread: no interpreter lock to hand over) and reads
each answer when its connection is needed again. Everything else is pyVmomi's: the request is
serialized by the stub, sent with its session cookie and headers to its path, over its pool.

A request is never sent twice. Once one call breaks the connection, nothing more is sent, and the
answers still outstanding are not read (a frozen server would make each cost a whole socket timeout):
``Outcome.sent`` says which requests reached the socket, so the caller can say "may have been started"
of them and "not started" of the others.
"""

from __future__ import annotations

import gzip
import zlib
from collections import deque
from dataclasses import dataclass
from http.client import HTTPException
from http.cookies import SimpleCookie
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from . import sdk

#: (managed object, method info, positional arguments) of one SOAP call
Call = Tuple[Any, Any, List[Any]]


@dataclass
class Outcome:
    """One call of ``invoke_many``: its result, or the exception it ended with."""

    result: Any = None
    error: Optional[BaseException] = None
    sent: bool = True   # False: the request never reached the socket (refused, or not tried after a break)
    tried: bool = True  # False: not tried, an earlier call of the batch had broken the connection


class ConnectionBrokeElsewhere(ConnectionError):
    """The answer to this request was not read: another call of the same batch broke the connection."""


def headers(stub: Any) -> Dict[str, str]:
    """The HTTP headers of SoapStubAdapter.InvokeMethod (cookie, SOAP action, user agent, compression)."""
    soap = sdk.SoapAdapter
    found = {'Cookie': stub.cookie, 'SOAPAction': stub.versionId,
             'Content-Type': 'text/xml; charset=%s' % soap.XML_ENCODING,
             'User-Agent': 'pyvmomi %s %s Python/%s (%s; %s; %s)' % (
                 soap.version_info_str, soap.kind, soap.PYTHON_VERSION, soap.OS_NAME, soap.OS_VERSION,
                 soap.OS_ARCH)}
    found.update(getattr(stub, '_customHeaders', None) or {})
    if getattr(stub, '_acceptCompressedResponses', False):
        found['Accept-Encoding'] = 'gzip, deflate'
    return found


def begin(stub: Any, mo: Any, info: Any, args: List[Any]) -> Any:
    """Serialize and send one request on a connection of the stub's pool; the connection, to read from."""
    request = stub.SerializeRequest(mo, info, args)
    for modifier in stub.requestModifierList:
        request = modifier(request)
    conn = stub.GetConnection()
    try:
        conn.request('POST', stub.path, request, headers(stub))
    except (OSError, HTTPException):
        _drop(stub, conn)
        raise
    return conn


def finish(stub: Any, conn: Any) -> Tuple[int, bytes]:
    """The answer on ``conn`` (status, body); the session cookie kept and the connection given back."""
    soap = sdk.SoapAdapter
    try:
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, HTTPException):
        _drop(stub, conn)
        raise
    cookie = resp.getheader('Set-Cookie') or resp.getheader('set-cookie')
    if cookie:
        stub.cookie = cookie
        session = SimpleCookie(cookie).get(soap.COOKIE_NAME)
        if session:
            soap.StubAdapterBase.SetSessionId(stub, session.value)
    if resp.status not in (200, 500):
        conn.close()
        raise HTTPException('%s %s' % (resp.status, resp.reason))
    stub.ReturnConnection(conn)
    encoding = (resp.getheader('Content-Encoding') or 'identity').lower()
    if encoding == 'gzip':
        body = gzip.decompress(body)
    elif encoding == 'deflate':
        body = zlib.decompress(body)
    return resp.status, body


def post(stub: Any, mo: Any, info: Any, args: List[Any]) -> Tuple[int, bytes]:
    """One call, as SoapStubAdapter.InvokeMethod sends it: (status, body)."""
    return finish(stub, begin(stub, mo, info, args))


def _drop(stub: Any, conn: Any) -> None:
    # as pyVmomi does: the server is probably sick, so no pooled connection is used again
    conn.close()
    stub.DropConnections()


def invoke_many(stub: Any, calls: Sequence[Call], width: int,
                answer: Callable[[int, bytes, Any], Any]) -> List[Outcome]:
    """Every call in order, up to ``width`` under way at once; ``answer(status, body, info)`` turns an
    answer into the method's result or raises its fault. One Outcome per call, in the calls' order."""
    outcomes: List[Optional[Outcome]] = [None] * len(calls)
    under_way: Deque[Tuple[int, Any]] = deque()
    broke: List[BaseException] = []

    def read(index: int, conn: Any) -> None:
        if broke:   # not read: a frozen server would hold each for a whole socket timeout
            conn.close()
            outcomes[index] = Outcome(error=ConnectionBrokeElsewhere(
                'the connection to vSphere broke on another call before this answer was read: %s'
                % sdk.fault_message(broke[0])))
            return
        try:
            status, body = finish(stub, conn)
            outcomes[index] = Outcome(result=answer(status, body, calls[index][1]))
        except sdk.NETWORK_ERRORS as exc:
            broke.append(exc)
            outcomes[index] = Outcome(error=exc)
        except Exception as exc:  # the call's own fault (or an answer nobody could parse): it was sent
            outcomes[index] = Outcome(error=exc)

    for index, (mo, info, args) in enumerate(calls):
        if len(under_way) >= max(1, width):
            read(*under_way.popleft())
        if broke:
            outcomes[index] = Outcome(error=broke[0], sent=False, tried=False)
            continue
        try:
            under_way.append((index, begin(stub, mo, info, args)))
        except sdk.NETWORK_ERRORS as exc:
            broke.append(exc)
            # refused: the request never left; any other error may have come after it was sent
            outcomes[index] = Outcome(error=exc, sent=not isinstance(exc, ConnectionRefusedError))
        except Exception as exc:  # it could not be serialized: nothing was sent
            outcomes[index] = Outcome(error=exc, sent=False)
    while under_way:
        read(*under_way.popleft())
    return [outcome or Outcome(error=RuntimeError('internal error: a call without an outcome'), sent=False)
            for outcome in outcomes]

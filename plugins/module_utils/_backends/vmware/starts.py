# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Starting vSphere tasks: one call at a time, or the starts of a sliding window sent together.

A task start is one SOAP round trip, and the server's work on it (vcsim: the whole snapshot; vCenter:
queueing the task) is time the client only waits. When the engine hands over the starts of many guests
at once (``start_together``), each start runs as usual up to its SOAP call, which is queued instead of
sent; the queued calls then go out ``START_WIDTH`` at a time on as many connections (transport.py), and
each start's outcome is what it would have been alone: its Operation, its translated fault, or, when
the connection broke, "may have been started" for a request that was sent and "not started" for one
that was not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..._errors import ConnectionFailedError, SavepointError
from ..._model import Guest
from ..._waiting import Operation
from . import sdk, transport
from .fast_props import FastCollector
from .lookups import VmwareLookups
from .sdk import NETWORK_ERRORS, fault_message, translate

#: task starts under way at once in a ``start_together`` (within pyVmomi's pool of 5 connections, so
#: the connections are kept for the next group; vCenter and vcsim serve each connection on its own)
START_WIDTH = 4


class SoapCall:
    """A method call on a managed object, made now (``call()``) or serialized to be sent with others."""

    def __init__(self, mo: Any, method: str, **kwargs: Any) -> None:
        self.mo = mo
        self.method = method   # pyVmomi's name of it ('CreateSnapshot' for CreateSnapshot_Task)
        self.kwargs = kwargs

    def __call__(self) -> Any:
        return getattr(self.mo, self.method)(**self.kwargs)

    def request(self) -> transport.Call:
        """(object, method info, arguments) as pyVmomi's ManagedMethod checks and orders them."""
        info = type(self.mo)._GetMethodInfo(self.method)  # pylint: disable=protected-access
        names = [param.name for param in info.params]
        unknown = sorted(set(self.kwargs) - set(names))
        if unknown:
            raise TypeError('%s() got unexpected arguments %s' % (self.method, ', '.join(unknown)))
        args = [self.kwargs.get(name) for name in names]
        for param, arg in zip(info.params, args):
            sdk.VmomiSupport.CheckField(param, arg)
        return self.mo, info, args


@dataclass
class _Queued:
    position: int            # which of the starts queued it
    op: Operation            # what the start returned, its task filled in once sent
    call: SoapCall
    doing: str


class VmwareStarts(VmwareLookups):
    """``_start`` (every task start goes through it) and ``start_together``."""

    starts_together = True   # a group's calls are only queued by its starts, then sent together

    def __init__(self, connection: Dict[str, Any]) -> None:
        super().__init__(connection)
        self._queue: Optional[List[_Queued]] = None   # a list while start_together collects its calls
        self._queued_by = 0                             # the start that is collecting (its position)

    def _start(self, action: str, guest: Guest, name: str, fn: Callable[[], Any], doing: str) -> Operation:
        if self._broken is not None:
            # One dead or frozen server must not cost a network timeout per guest.
            raise ConnectionFailedError('%s (not started: the connection to vSphere broke earlier in this task: %s)'
                                        % (doing, self._broken), provider_message=self._broken)
        queue = self._queue
        if queue is not None and isinstance(fn, SoapCall) and not (queue and queue[-1].position == self._queued_by):
            # queued (one call per start: a second one of the same start is made at once, below)
            op = Operation(action=action, guest=guest, snapshot_name=name)
            queue.append(_Queued(self._queued_by, op, fn, doing))
            return op
        try:
            task = fn()
        except Exception as exc:  # every fault and network error becomes an engine error
            raise self._start_failed(exc, doing, sent=True)
        return self._started(guest, task, Operation(action=action, guest=guest, snapshot_name=name))

    def _started(self, guest: Guest, task: Any, op: Operation) -> Operation:
        self._props.pop(guest.id, None)   # written: what was read of the guest is old
        op.handle, op.id = task, task._moId  # pylint: disable=protected-access
        return op

    def _start_failed(self, exc: BaseException, doing: str, sent: bool) -> SavepointError:
        """A start's exception as the engine's error; a network error stops the session's further starts."""
        if isinstance(exc, NETWORK_ERRORS):
            self._broken = self._broken or fault_message(exc)
            if not sent or isinstance(exc, ConnectionRefusedError):
                # Refused, or not tried: the request never reached the server.
                return translate(exc, '%s (not started)' % doing)
            # The request may have reached the server before the connection broke.
            return translate(exc, '%s; it may have been started on the server: check the guest before retrying'
                             % doing)
        return translate(exc, doing)

    def start_together(self, starts: Sequence[Callable[[], Optional[Operation]]]) -> List[Any]:
        collector = self._collector
        if len(starts) < 2 or self._broken is not None or not isinstance(collector, FastCollector):
            return super().start_together(starts)
        outcomes: List[Any] = []
        self._queue = queued = []
        try:
            for position, start in enumerate(starts):
                self._queued_by = position
                try:
                    outcomes.append(start())
                except Exception as exc:  # pylint: disable=broad-except  # handed to the engine, per guest
                    outcomes.append(exc)
                    # a start that failed after queueing its call has not started: its call is not sent
                    while queued and queued[-1].position == position:
                        queued.pop()
        finally:
            self._queue = None
        requests: List[transport.Call] = []
        sendable: List[_Queued] = []
        for item in queued:
            try:
                requests.append(item.call.request())
                sendable.append(item)
            except Exception as exc:  # pylint: disable=broad-except  # a bad argument: nothing was sent
                outcomes[item.position] = translate(exc, item.doing)
        results = self._send_together(collector, requests)
        for item, result in zip(sendable, results):
            if result.error is None:
                self._started(item.op.guest, result.result, item.op)
            elif not result.tried:   # as _start says it of a start after the connection broke
                self._broken = self._broken or fault_message(result.error)
                outcomes[item.position] = ConnectionFailedError(
                    '%s (not started: the connection to vSphere broke earlier in this task: %s)'
                    % (item.doing, self._broken), provider_message=self._broken)
            else:
                outcomes[item.position] = self._start_failed(result.error, item.doing, sent=result.sent)
        return outcomes

    def _send_together(self, collector: FastCollector, requests: List[transport.Call]) -> List[transport.Outcome]:
        """The queued calls, START_WIDTH under way at once (tests wrap it to count the calls)."""
        return transport.invoke_many(self._stub(), requests, START_WIDTH, collector.answer)

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of the snapshot modules: live progress when the task runs on the controller.

Ansible shows a module's output only when it ends, so a one-hour vSphere
delete is silent. When the task runs on the controller (``delegate_to:
localhost``, a local connection) and with the controller's own Python, this
plugin runs the very same module code (``_module.run_snapshot_module``) in the
controller's worker process and prints progress lines through Ansible's
Display (they reach the terminal and AWX's job output) at least every
``PROGRESS_EVERY`` seconds: guest, operation, percent where the provider
reports it, elapsed time and deadline. Anywhere else (a remote host, another
interpreter, async) the module is executed as always.

Both paths run the module's own main() and its own AnsibleModule: the same
argument spec and validation, results, check mode, diff, no_log and secret
masking; the controller path only redirects where parameters come from and
where the result and log lines go (as ansible.netcommon does for network
modules).
"""

from __future__ import annotations

import copy
import io
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Type

from ansible import constants as C
from ansible.module_utils import basic
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.savepoint.virt.plugins.module_utils import _module
from ansible_collections.savepoint.virt.plugins.module_utils._backend import SnapshotBackend
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import Operation

display = Display()

#: seconds between progress lines while the engine works (the issue asks for at most 10)
PROGRESS_EVERY = 10.0
#: task variable that turns the controller path off (the module then runs as usual)
SWITCH = 'savepoint_live_progress'
#: the AnsibleModule methods the controller path redirects (where params, the result and log lines go)
HOOKS = ('_load_params', '_record_module_result', 'log')


class Tracker:
    """What the engine is doing, for the progress lines: the operations its backend started."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.timeout = timeout
        self.operations: List[Operation] = []
        self.starting: Optional[str] = None
        self.lock = threading.Lock()

    def line(self, hide_names: bool = False) -> str:
        elapsed = self.clock() - self.started
        timing = 'elapsed %ds, deadline in %ds (timeout %ds)' % (
            elapsed, max(0.0, self.timeout - elapsed), self.timeout)
        if hide_names:
            return 'savepoint.virt: working, %s' % timing
        with self.lock:
            ops = [op for first in self.operations for op in first.chain()]
            starting = self.starting
        waiting = [op for op in ops if not op.done]
        parts = []
        for op in waiting[:10]:
            percent = ' %d%%' % op.percent if op.percent is not None else ''
            parts.append("%s '%s' on %s%s" % (op.action, op.snapshot_name, op.guest.name, percent))
        if len(waiting) > 10:
            parts.append('and %d more' % (len(waiting) - 10))
        if starting:
            parts.append('starting %s' % starting)
        done = len(ops) - len(waiting)
        if not parts:
            doing = 'reading guests and snapshots' if not ops else 'reading back results'
        else:
            doing = ', '.join(parts)
        if ops:
            doing += ' [%d of %d operations done]' % (done, len(ops))
        return 'savepoint.virt: %s; %s' % (doing, timing)


def tracked(backend_cls: Type[SnapshotBackend], tracker: Tracker) -> Type[SnapshotBackend]:
    """A subclass of the backend that tells the tracker about every write it starts."""

    def wrap(name: str, describe: Callable[..., str]) -> Callable[..., Operation]:
        original = getattr(backend_cls, name)

        def start(self: SnapshotBackend, *args: Any, **kwargs: Any) -> Operation:
            with tracker.lock:
                tracker.starting = describe(*args)
            try:
                op = original(self, *args, **kwargs)
            finally:
                with tracker.lock:
                    tracker.starting = None
            if op is not None:
                with tracker.lock:
                    tracker.operations.append(op)
            return op
        return start

    return type('Tracked' + backend_cls.__name__, (backend_cls,), {
        'start_create': wrap('start_create', lambda guest, spec, *a: "create '%s' on %s" % (spec.name, guest.name)),
        'start_revert': wrap('start_revert', lambda guest, snap, *a: "revert '%s' on %s" % (snap.name, guest.name)),
        'start_delete': wrap('start_delete', lambda guest, snap, *a: "delete '%s' on %s" % (snap.name, guest.name)),
    })


class SnapshotAction(ActionBase):
    """Base of the action plugins named like the snapshot modules."""

    #: set by each plugin: the module's backends, its short name, whether it is the neutral one
    BACKENDS: Sequence[Type[SnapshotBackend]] = ()
    MODULE = ''
    NEUTRAL = False
    INFO = False          # the *_snapshot_info modules: nothing to wait for, in-process only saves the fork

    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        if not self._on_controller(task_vars):
            result.update(self._execute_module(module_name='savepoint.virt.%s' % self.MODULE,
                                               module_args=self._task.args, task_vars=task_vars))
        else:
            # the local connection only says who runs the task (at -vvv), as it does for a module
            self._connection._connect()  # pylint: disable=protected-access
            display.vvv('savepoint.virt: running %s in the controller process (live progress); '
                        'set savepoint_live_progress=false to run it as a module' % self.MODULE)
            result.update(self._run_here(task_vars))
        if self._task.no_log:
            # Ansible takes any 'results' list for loop results and censors only the items
            # that say so: without this, no_log: true would still print every guest's result.
            for entry in result.get('results') or []:
                if isinstance(entry, dict):
                    entry['_ansible_no_log'] = True
        return result

    # -- which path ----------------------------------------------------------------------
    def _on_controller(self, task_vars: Dict[str, Any]) -> bool:
        if self._task.async_val:
            return False
        if not all(name in basic.AnsibleModule.__dict__ for name in HOOKS):
            # an ansible-core without the hooks the controller path redirects (2.16 has no
            # _record_module_result): the module runs as a module, with progress at the end
            return False
        if str(task_vars.get(SWITCH, True)).lower() in ('false', 'no', 'off', '0'):
            return False
        if getattr(self._connection, 'transport', None) not in ('local', 'ansible.builtin.local'):
            return False
        interpreter = self._interpreter(task_vars)
        if interpreter is None or interpreter.startswith('auto'):
            return True   # discovery on the controller: this Python, the one Ansible runs in
        # another Python was chosen for the module (maybe the one with the SDKs): run it there
        return os.path.realpath(interpreter) == os.path.realpath(sys.executable)

    def _interpreter(self, task_vars: Dict[str, Any]) -> Optional[str]:
        host_vars = task_vars
        delegated = task_vars.get('ansible_delegated_vars') or {}
        if self._task.delegate_to and self._task.delegate_to in delegated:
            host_vars = delegated[self._task.delegate_to]
        value = host_vars.get('ansible_python_interpreter')
        if value is None:
            try:
                value = C.config.get_config_value('INTERPRETER_PYTHON', variables=host_vars)
            except Exception:  # no such setting: unknown, run the module as usual
                return None
        return self._templar.template(value) if isinstance(value, str) else None

    # -- the controller path ------------------------------------------------------------
    def _run_here(self, task_vars: Dict[str, Any]) -> Dict[str, Any]:
        """The module's own main() in this process, as ansible.netcommon runs network modules.

        Its AnsibleModule (whatever subclass _module.make_module builds) validates the
        arguments with the module's ArgumentSpecValidator, applies check mode, diff and
        no_log, and masks secrets as on any host; only where its parameters come from,
        where its result goes and where its log lines go are redirected here.
        """
        args = copy.deepcopy(self._task.args)
        self._update_module_args('savepoint.virt.%s' % self.MODULE, args, task_vars)
        hide = bool(self._task.no_log)
        host = self._task.delegate_to or 'localhost'
        try:
            timeout = float(args.get('timeout') or 600)
        except (TypeError, ValueError, OverflowError):
            timeout = 600.0    # the module refuses it itself, naming the option
        tracker = Tracker(timeout)
        recorded: Dict[str, Any] = {}

        # a JSON stdout callback prints one document: progress goes to stderr there
        to_stderr = str(C.config.get_config_value('DEFAULT_STDOUT_CALLBACK')).endswith('json')

        def show(line: str) -> None:
            display.display('[%s] %s' % (host, line), stderr=to_stderr)

        def load_params(module: Any) -> None:
            module.params = copy.deepcopy(args)
            if hasattr(basic, '_PARSED_MODULE_ARGS'):
                # newer ansible-core reads the parsed arguments again when it formats the result
                basic._PARSED_MODULE_ARGS = copy.deepcopy(args)  # pylint: disable=protected-access

        def record(module: Any, result: Dict[str, Any]) -> None:
            recorded['result'] = result

        def log(module: Any, msg: str, log_args: Any = None) -> None:
            # the engine's lines (already redacted by the module): names guests, so not for no_log;
            # AnsibleModule's own 'Invoked with ...' line (with log_args) stays out of the output
            if not hide and log_args is None and not msg.startswith('Invoked with'):
                show('savepoint.virt: %s' % remove_values(msg, module.no_log_values))

        environment: Dict[str, str] = {}
        self._compute_environment_string(environment)
        saved_env = dict(os.environ)
        saved = {name: basic.AnsibleModule.__dict__[name] for name in HOOKS}
        saved_parsed = getattr(basic, '_PARSED_MODULE_ARGS', None)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(PROGRESS_EVERY):
                show(tracker.line(hide))

        ticker = threading.Thread(target=beat, name='savepoint-progress', daemon=True)
        stdout, stderr = sys.stdout, sys.stderr
        try:
            # this worker process runs this one task: patching here touches nothing else
            os.environ.update({k: str(v) for k, v in environment.items()})
            basic.AnsibleModule._load_params = load_params
            basic.AnsibleModule._record_module_result = record
            basic.AnsibleModule.log = log
            sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
            ticker.start()
            backends = self.BACKENDS if self.INFO else [tracked(b, tracker) for b in self.BACKENDS]
            _module.main_for(backends, self.MODULE, info=self.INFO, neutral=self.NEUTRAL)
        except SystemExit:
            pass
        except Exception as exc:  # never a traceback; a module that raised ends as a failed task alike
            recorded.setdefault('result', {'failed': True, 'msg': 'savepoint.virt: unexpected %s in %s'
                                           % (type(exc).__name__, self.MODULE)})
        finally:
            stop.set()
            sys.stdout, sys.stderr = stdout, stderr
            for name, value in saved.items():
                setattr(basic.AnsibleModule, name, value)
            if hasattr(basic, '_PARSED_MODULE_ARGS'):
                basic._PARSED_MODULE_ARGS = saved_parsed  # pylint: disable=protected-access
            os.environ.clear()
            os.environ.update(saved_env)
            if ticker.is_alive():
                ticker.join(timeout=5)
        result = recorded.get('result')
        if result is None:
            return {'failed': True, 'msg': 'savepoint.virt: %s ended without a result' % self.MODULE}
        return {k: v for k, v in result.items() if not k.startswith('_ansible_')}

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side of every module: argument specs built from the backends'
plain option tables, one runner, one error handler. Modules stay a few lines."""

from __future__ import annotations

import re
import traceback
from typing import Any, Dict, List, Sequence, Type

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible.module_utils.parsing.convert_bool import BOOLEANS, boolean

from ._backend import SnapshotBackend
from ._engine import Request, SnapshotEngine
from ._errors import InvalidRequestError, SavepointError
from ._model import POWER_AFTER_REVERT, QUIESCE_POLICIES, SNAPSHOT_KINDS, GuestRef, SnapshotSpec, normalise_description
from ._options import STATES, check_strings, resolve_task_options
from ._ownership import make_marker
from ._providers import BACKENDS
from ._redact import redact, redact_text, secrets_in
from ._retention import RetentionRule
from ._waiting import WaitPolicy

# created_by names the module, not the collection version: a module cannot read galaxy.yml
# (it is not packed with it), and a second copy of the version here would drift from it.

#: module option -> GuestRef field. Which of them a provider takes is in its backend's guest_fields.
GUEST_OPTIONS = {'name': 'name', 'uuid': 'uuid', 'moid': 'id', 'server_id': 'id', 'folder': 'folder'}
#: guests entry key -> GuestRef field, for the entry keys every provider may use
ENTRY_KEYS = {'name': 'name', 'uuid': 'uuid', 'id': 'id', 'moid': 'id', 'server_id': 'id', 'folder': 'folder'}


def _guest_spec() -> Dict[str, Any]:
    return {
        'name': {'type': 'str', 'aliases': ['guest']},
        'uuid': {'type': 'str'},
        'guests': {'type': 'list', 'elements': 'raw'},
    }


def connection_spec(backends: Sequence[Type[SnapshotBackend]]) -> Dict[str, Any]:
    """Argument spec of the backends' connection options (the union, for the neutral modules)."""
    spec: Dict[str, Any] = {}
    for backend in backends:
        for option, table in backend.connection_options.items():
            entry = {k: v for k, v in table.items()
                     if k in ('type', 'default', 'no_log', 'choices', 'aliases', 'elements', 'options')}
            if table.get('env'):
                entry['fallback'] = (env_fallback, list(table['env']))
                if 'default' in entry:
                    # env_fallback only applies when there is no default; it is resolved in the backend.
                    entry.pop('default')
            entry.setdefault('no_log', False)
            spec[option] = entry
    return spec


def extra_guest_spec(backends: Sequence[Type[SnapshotBackend]]) -> Dict[str, Any]:
    spec = {}
    for backend in backends:
        for option in backend.guest_options:
            spec[option] = {'type': 'str'}
    return spec


def spec_option_spec(backends: Sequence[Type[SnapshotBackend]]) -> Dict[str, Any]:
    spec: Dict[str, Any] = {}
    for backend in backends:
        spec.update(backend.spec_options)
    return spec


def shared_spec() -> Dict[str, Any]:
    """What every module of the action group accepts, so that one ``module_defaults`` group
    (group/savepoint.virt.snapshot) serves them all: the guest options, every provider's
    connection and guest options, and the provider-only create options. A module uses the
    connection options of its own provider and ignores the others'."""
    spec: Dict[str, Any] = dict(_guest_spec())
    spec.update(extra_guest_spec(BACKENDS))
    spec.update(connection_spec(BACKENDS))
    spec.update(spec_option_spec(BACKENDS))
    return spec


def snapshot_argument_spec(backends: Sequence[Type[SnapshotBackend]], with_provider: bool = False) -> Dict[str, Any]:
    spec = shared_spec()
    # No defaults on the task options: resolve_task_options() fills the documented ones in, so
    # that an option the task set for a state it does not apply to can be refused.
    spec.update({
        'snapshot_name': {'type': 'str', 'aliases': ['snapshot']},
        'state': {'type': 'str', 'default': 'present', 'choices': list(STATES)},
        # memory_dump and a boolean quiesce: the spelling of community.vmware's vmware_guest_snapshot.
        'memory': {'type': 'bool', 'aliases': ['memory_dump']},
        'quiesce': {'type': 'raw'},
        'kind': {'type': 'str', 'choices': list(SNAPSHOT_KINDS)},
        'power_state': {'type': 'str', 'choices': list(POWER_AFTER_REVERT)},
        'consolidate': {'type': 'str', 'choices': ['auto', 'true', 'false']},
        'parallel': {'type': 'int'},
    })
    for kind, names in (('str', ('description', 'expires_in', 'owner', 'older_than', 'snapshot_id',
                                 'new_snapshot_name', 'new_description')),
                        ('bool', ('remove_children', 'remove_all', 'expired', 'all_or_nothing', 'wait')),
                        ('int', ('keep_last', 'timeout'))):
        spec.update({name: {'type': kind} for name in names})
    if with_provider:
        spec['provider'] = {'type': 'str', 'required': True, 'choices': sorted(b.provider for b in backends)}
    return spec


def info_argument_spec(backends: Sequence[Type[SnapshotBackend]], with_provider: bool = False) -> Dict[str, Any]:
    # The provider-only create options (include_volumes) are accepted and ignored: they may come
    # from the group's module_defaults, and reading snapshots creates nothing.
    spec = shared_spec()
    if with_provider:
        spec['provider'] = {'type': 'str', 'required': True, 'choices': sorted(b.provider for b in backends)}
    return spec


MUTUALLY_EXCLUSIVE = [['name', 'uuid', 'guests']]


class RedactingModule(AnsibleModule):
    """AnsibleModule whose every result, failure, warning and log line goes through _redact last.

    The password of a URI given as an option (libvirt ``uri``) joins the no_log
    values, so Ansible masks it in ``invocation`` too; the rest is masked by text.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.no_log_values.update(secrets_in(self.params))

    def _secrets(self) -> List[str]:
        return [v for v in self.no_log_values if isinstance(v, str)]

    def exit_json(self, **kwargs: Any) -> None:  # type: ignore[override]
        super().exit_json(**redact(kwargs, self._secrets()))

    def fail_json(self, msg: str, **kwargs: Any) -> None:  # type: ignore[override]
        super().fail_json(msg=redact_text(msg, self._secrets()), **redact(kwargs, self._secrets()))

    def warn(self, warning: str, *args: Any, **kwargs: Any) -> None:
        super().warn(redact_text(warning, self._secrets()), *args, **kwargs)

    def log(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().log(redact_text(msg, self._secrets()), *args, **kwargs)


def make_module(argument_spec: Dict[str, Any]) -> AnsibleModule:
    return RedactingModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=MUTUALLY_EXCLUSIVE)


def choose_backend(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]]) -> Type[SnapshotBackend]:
    wanted = module.params.get('provider')
    if wanted is None:
        return backends[0]
    return next(b for b in backends if b.provider == wanted)


def entry_keys(backend: Type[SnapshotBackend]) -> Dict[str, str]:
    """The keys a ``guests`` entry may use with this provider (moid for VMware, id/server_id for OpenStack)."""
    options = backend.guest_options
    keys = {}
    for key, field_name in ENTRY_KEYS.items():
        if field_name not in backend.guest_fields:
            continue
        if key in ('moid', 'server_id') and key not in options:
            continue
        keys[key] = field_name
    return keys


def guest_refs(params: Dict[str, Any], backend: Type[SnapshotBackend]) -> List[GuestRef]:
    """The guests the task names, refusing options this provider does not use (naming the option)."""
    given = {opt: params.get(opt) for opt in GUEST_OPTIONS if params.get(opt) is not None}
    for option in given:
        if GUEST_OPTIONS[option] not in backend.guest_fields or (
                option in ('moid', 'server_id') and option not in backend.guest_options):
            raise InvalidRequestError("option '%s' is not used by provider %s" % (option, backend.provider))
    if params.get('guests') is not None:
        if any(opt != 'folder' for opt in given):
            raise InvalidRequestError('use either guests or one guest (%s), not both' % ', '.join(given))
        if not params['guests']:
            raise InvalidRequestError('guests must name at least one guest')
        keys = entry_keys(backend)
        refs = []
        for item in params['guests']:
            ref = GuestRef.from_value(item, keys, backend.provider)
            if ref.folder is None and given.get('folder'):
                ref = GuestRef(name=ref.name, uuid=ref.uuid, id=ref.id, folder=given['folder'])
            refs.append(ref)
        return refs
    if not given or set(given) == {'folder'}:
        return []
    ids = [opt for opt in given if opt != 'folder']
    if len(ids) > 1:
        raise InvalidRequestError('name the guest once: %s are mutually exclusive' % ' and '.join(ids))
    fields = {GUEST_OPTIONS[opt]: value for opt, value in given.items()}
    return [GuestRef(**fields)]


def check_own_strings(params: Dict[str, Any], backend: Type[SnapshotBackend]) -> None:
    """Empty strings and control characters, in every option this module uses. Other providers'
    connection options are ignored entirely (they may come from the group's module_defaults)."""
    ignored = {name for other in BACKENDS for name in other.connection_options} - set(backend.connection_options)
    secret = [name for name, entry in backend.connection_options.items() if entry.get('no_log')]
    check_strings({k: v for k, v in params.items() if k not in ignored}, secret=secret)


#: a boolean quiesce as community.vmware means it
QUIESCE_BOOLEANS = {True: 'required', False: 'never'}


def quiesce_policy(value: Any) -> Any:
    """``quiesce``: one of the policies, or a boolean (true: required, false: never); else an error."""
    if value is None or isinstance(value, bool):
        return QUIESCE_BOOLEANS.get(value)
    if isinstance(value, str) and value in QUIESCE_POLICIES:
        return value
    if isinstance(value, str) and value.lower() in BOOLEANS:
        # A templated boolean ('{{ flag }}' rendered as text) means what the boolean means.
        return QUIESCE_BOOLEANS[boolean(value)]
    raise InvalidRequestError('quiesce must be one of %s, or a boolean (true: required, false: never), not %r'
                              % (', '.join(QUIESCE_POLICIES), value))


def build_request(params: Dict[str, Any], backend: Type[SnapshotBackend], module_name: str) -> Request:
    """Module options -> a validated engine Request; every refusal names the option."""
    state = params['state']
    check_own_strings(params, backend)
    params = dict(params, quiesce=quiesce_policy(params.get('quiesce')))
    params = resolve_task_options(params, state, backend.spec_options)
    refs = guest_refs(params, backend)
    spec = None
    renames = state == 'present' and (params.get('new_snapshot_name') is not None
                                      or params.get('new_description') is not None)
    if state == 'present' and not renames:
        marker = make_marker(params['owner'], 'savepoint.virt.%s' % module_name, params['expires_in'])
        options = {k: params.get(k) for k in backend.spec_options}
        spec = SnapshotSpec(description=normalise_description(params['description']),
                            memory=params['memory'], quiesce=params['quiesce'], kind=params['kind'],
                            marker=marker, options=options)
    retention = None
    if state == 'pruned':
        older = params.get('older_than')
        retention = RetentionRule.from_options(params.get('keep_last'), older, params.get('expired'))
    return Request(state=state, guests=refs, snapshot_name=params.get('snapshot_name'), spec=spec,
                   power_state=params['power_state'], remove_children=params['remove_children'],
                   remove_all=params['remove_all'],
                   all_or_nothing=params['all_or_nothing'], wait=params['wait'], retention=retention,
                   owner=params['owner'], timeout=float(params['timeout']), snapshot_id=params.get('snapshot_id'),
                   new_name=params.get('new_snapshot_name'), consolidate=params['consolidate'],
                   parallel=params['parallel'],
                   new_description=(normalise_description(params['new_description'])
                                    if params.get('new_description') is not None else None))


def refuse_foreign_spec_options(params: Dict[str, Any], backend: Type[SnapshotBackend],
                                backends: Sequence[Type[SnapshotBackend]]) -> None:
    """A provider-only option set for another provider is an error, never silently ignored."""
    mine = backend.spec_options
    # Every module accepts every provider's create options (for module_defaults), so all are checked.
    for other in list(backends) + [b for b in BACKENDS if b not in backends]:
        for option, entry in other.spec_options.items():
            if option in mine:
                continue
            value = params.get(option)
            if value not in (None, entry.get('default')):
                raise InvalidRequestError("option '%s' is only used by provider %s, not by %s"
                                          % (option, other.provider, backend.provider))


def connection_params(params: Dict[str, Any], backend: Type[SnapshotBackend]) -> Dict[str, Any]:
    return {name: params.get(name) for name in backend.connection_options}


_USERINFO = re.compile(r'(\w+://)[^/@\s]*@')


def unexpected(exc: BaseException, doing: str) -> SavepointError:
    """Any exception that is not the engine's own, as a clear error (no traceback in msg).

    The engine has already run the rollback and the per-guest report where a write was under
    way; this only makes sure nothing ends as "MODULE FAILURE" with a traceback.
    """
    text = _USERINFO.sub(r'\1***@', str(exc))[:500] or 'no message'
    return SavepointError('unexpected error while %s: %s: %s (this is a bug in savepoint.virt or in the '
                          'provider SDK; please report it)' % (doing, type(exc).__name__, text),
                          details={'exception': type(exc).__name__})


def fail(module: AnsibleModule, exc: SavepointError, progress: List[str]) -> None:
    result = exc.to_result()
    details = result.pop('error_details', {}) or {}
    results = details.pop('results', None)
    if results is not None:
        result['results'] = results
    if details:
        result['error_details'] = details
    result['changed'] = bool(results) and any(r.get('changed') for r in results)
    if progress:
        result['progress'] = progress
    if getattr(exc, 'traceback_text', None):
        # Where Ansible shows a module's traceback: with -vvv, never in msg.
        result['exception'] = exc.traceback_text
    module.fail_json(**result)


def run_snapshot_module(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]], module_name: str) -> None:
    progress: List[str] = []

    def report(line: str) -> None:
        progress.append(line)
        module.log(line)

    doing = 'reading the options'
    try:
        backend_cls = choose_backend(module, backends)
        refuse_foreign_spec_options(module.params, backend_cls, backends)
        request = build_request(module.params, backend_cls, module_name)
        request.validate()
        doing = 'talking to %s' % backend_cls.provider
        with backend_cls(connection_params(module.params, backend_cls)) as backend:
            engine = SnapshotEngine(backend, check_mode=module.check_mode, diff=module._diff,
                                    wait_policy=WaitPolicy(timeout=request.timeout),
                                    progress=report)
            result = engine.run(request)
    except SavepointError as exc:
        fail(module, exc, progress)
        return
    except Exception as exc:  # pylint: disable=broad-except  # the last line of defence: a clear message
        error = unexpected(exc, doing)
        error.traceback_text = traceback.format_exc()  # type: ignore[attr-defined]
        fail(module, error, progress)
        return
    warnings = result.pop('warnings', [])
    for warning in warnings:
        module.warn(warning)
    if progress:
        result['progress'] = progress
    module.exit_json(**result)


def run_info_module(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]]) -> None:
    doing = 'reading the options'
    try:
        backend_cls = choose_backend(module, backends)
        check_own_strings(module.params, backend_cls)
        refs = guest_refs(module.params, backend_cls)
        doing = 'reading snapshots from %s' % backend_cls.provider
        with backend_cls(connection_params(module.params, backend_cls)) as backend:
            result = SnapshotEngine(backend).info(refs or None)
    except SavepointError as exc:
        fail(module, exc, [])
        return
    except Exception as exc:  # pylint: disable=broad-except  # the last line of defence: a clear message
        error = unexpected(exc, doing)
        error.traceback_text = traceback.format_exc()  # type: ignore[attr-defined]
        fail(module, error, [])
        return
    for warning in result.pop('warnings', []):
        module.warn(warning)
    module.exit_json(**result)


def hide_secrets(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]]) -> None:
    """Secrets inside options that cannot be no_log as a whole (OpenStack's ``cloud`` as a dict):
    masked in every output like no_log values. Every provider's: each module accepts every
    provider's connection options (module_defaults), and Ansible echoes them in ``invocation``."""
    for backend in list(backends) + [b for b in BACKENDS if b not in backends]:
        finder = getattr(backend, 'secret_values', None)
        if finder is not None:
            module.no_log_values.update(finder(module.params))


def main_for(backends: Sequence[Type[SnapshotBackend]], module_name: str, info: bool = False,
             neutral: bool = False) -> None:
    """The whole main() of a module: a provider module passes its backend, the neutral ones all (neutral=True)."""
    if info:
        module = make_module(info_argument_spec(backends, neutral))
        hide_secrets(module, backends)
        run_info_module(module, backends)
    else:
        module = make_module(snapshot_argument_spec(backends, neutral))
        hide_secrets(module, backends)
        run_snapshot_module(module, backends, module_name)

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side of every module: argument specs built from the backends'
plain option tables, one runner, one error handler. Modules stay a few lines."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Type

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ._backend import SnapshotBackend
from ._engine import STATES, Request, SnapshotEngine
from ._errors import InvalidRequestError, SavepointError
from ._model import POWER_AFTER_REVERT, QUIESCE_POLICIES, SNAPSHOT_KINDS, GuestRef, SnapshotSpec
from ._ownership import DEFAULT_OWNER, make_marker
from ._retention import RetentionRule
from ._waiting import WaitPolicy

COLLECTION_VERSION = '0.1.0'

#: module option -> GuestRef field. Which of them a provider takes is in its backend's guest_fields.
GUEST_OPTIONS = {'name': 'name', 'uuid': 'uuid', 'moid': 'id', 'server_id': 'id', 'folder': 'folder'}


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
        for option in getattr(backend, 'guest_options', ()):
            spec[option] = {'type': 'str'}
    return spec


def spec_option_spec(backends: Sequence[Type[SnapshotBackend]]) -> Dict[str, Any]:
    spec: Dict[str, Any] = {}
    for backend in backends:
        spec.update(getattr(backend, 'spec_options', {}))
    return spec


def snapshot_argument_spec(backends: Sequence[Type[SnapshotBackend]], with_provider: bool = False) -> Dict[str, Any]:
    spec: Dict[str, Any] = dict(_guest_spec())
    spec.update(extra_guest_spec(backends))
    spec.update(connection_spec(backends))
    spec.update(spec_option_spec(backends))
    spec.update({
        'snapshot_name': {'type': 'str', 'aliases': ['snapshot']},
        'state': {'type': 'str', 'default': 'present', 'choices': list(STATES)},
        'description': {'type': 'str', 'default': ''},
        'memory': {'type': 'bool'},
        'quiesce': {'type': 'str', 'default': 'never', 'choices': list(QUIESCE_POLICIES)},
        'kind': {'type': 'str', 'default': 'internal', 'choices': list(SNAPSHOT_KINDS)},
        'power_state': {'type': 'str', 'default': 'restore', 'choices': list(POWER_AFTER_REVERT)},
        'remove_children': {'type': 'bool', 'default': False},
        'remove_all': {'type': 'bool', 'default': False},
        'expires_in': {'type': 'str'},
        'owner': {'type': 'str', 'default': DEFAULT_OWNER},
        'keep_last': {'type': 'int'},
        'older_than': {'type': 'str'},
        'expired': {'type': 'bool', 'default': False},
        'all_or_nothing': {'type': 'bool', 'default': True},
        'timeout': {'type': 'int', 'default': 600},
        'wait': {'type': 'bool', 'default': True},
    })
    if with_provider:
        spec['provider'] = {'type': 'str', 'required': True, 'choices': sorted(b.provider for b in backends)}
    return spec


def info_argument_spec(backends: Sequence[Type[SnapshotBackend]], with_provider: bool = False) -> Dict[str, Any]:
    spec: Dict[str, Any] = dict(_guest_spec())
    spec.update(extra_guest_spec(backends))
    spec.update(connection_spec(backends))
    if with_provider:
        spec['provider'] = {'type': 'str', 'required': True, 'choices': sorted(b.provider for b in backends)}
    return spec


MUTUALLY_EXCLUSIVE = [['name', 'uuid', 'guests']]


def make_module(argument_spec: Dict[str, Any]) -> AnsibleModule:
    return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                         mutually_exclusive=MUTUALLY_EXCLUSIVE)


def choose_backend(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]]) -> Type[SnapshotBackend]:
    wanted = module.params.get('provider')
    if wanted is None:
        return backends[0]
    return next(b for b in backends if b.provider == wanted)


def guest_refs(params: Dict[str, Any], backend: Type[SnapshotBackend]) -> List[GuestRef]:
    """The guests the task names, refusing options this provider does not use."""
    given = {opt: params.get(opt) for opt in GUEST_OPTIONS if params.get(opt) not in (None, '')}
    for option in given:
        if GUEST_OPTIONS[option] not in backend.guest_fields or (
                option in ('moid', 'server_id') and option not in getattr(backend, 'guest_options', ())):
            raise InvalidRequestError("option '%s' is not used by provider %s" % (option, backend.provider))
    if params.get('guests'):
        if any(opt != 'folder' for opt in given):
            raise InvalidRequestError('use either guests or one guest (%s), not both' % ', '.join(given))
        refs = []
        for item in params['guests']:
            ref = GuestRef.from_value(item)
            if ref.folder is None and given.get('folder'):
                ref = GuestRef(name=ref.name, uuid=ref.uuid, id=ref.id, folder=given['folder'])
            for field in ('uuid', 'id', 'folder'):
                if getattr(ref, field) and field not in backend.guest_fields:
                    raise InvalidRequestError("guests entries of provider %s cannot use '%s'"
                                              % (backend.provider, field))
            refs.append(ref)
        return refs
    if not given or set(given) == {'folder'}:
        return []
    fields = {GUEST_OPTIONS[opt]: value for opt, value in given.items()}
    ref = GuestRef(**fields)
    ref.validate()
    return [ref]


def build_request(params: Dict[str, Any], backend: Type[SnapshotBackend], module_name: str) -> Request:
    refs = guest_refs(params, backend)
    state = params['state']
    spec = None
    if state == 'present':
        marker = make_marker(params.get('owner'), 'savepoint.virt.%s %s' % (module_name, COLLECTION_VERSION),
                             params.get('expires_in'))
        options = {k: params.get(k) for k in getattr(backend, 'spec_options', {})}
        spec = SnapshotSpec(name=params.get('snapshot_name') or '', description=params.get('description') or '',
                            memory=params.get('memory'), quiesce=params['quiesce'], kind=params['kind'],
                            marker=marker, options=options)
    for option in getattr(backend, 'spec_options', {}):
        if state != 'present' and params.get(option) and option not in getattr(backend, 'any_state_options', ()):
            raise InvalidRequestError("option '%s' only applies to state=present" % option)
    retention = None
    if state == 'pruned':
        retention = RetentionRule.from_options(params.get('keep_last'), params.get('older_than'),
                                               params.get('expired'))
    elif any(params.get(k) not in (None, False) for k in ('keep_last', 'older_than', 'expired')):
        raise InvalidRequestError('keep_last, older_than and expired only apply to state=pruned')
    if params.get('timeout') is not None and params['timeout'] <= 0:
        raise InvalidRequestError('timeout must be a positive number of seconds')
    return Request(state=state, guests=refs, snapshot_name=params.get('snapshot_name'), spec=spec,
                   power_state=params['power_state'], remove_children=params['remove_children'],
                   remove_all=params['remove_all'],
                   all_or_nothing=params['all_or_nothing'], wait=params['wait'], retention=retention,
                   owner=params.get('owner') or DEFAULT_OWNER)


def refuse_foreign_spec_options(params: Dict[str, Any], backend: Type[SnapshotBackend],
                                backends: Sequence[Type[SnapshotBackend]]) -> None:
    """A provider-only option set for another provider is an error, never silently ignored."""
    mine = getattr(backend, 'spec_options', {})
    for other in backends:
        for option, entry in getattr(other, 'spec_options', {}).items():
            if option in mine:
                continue
            value = params.get(option)
            if value not in (None, entry.get('default')):
                raise InvalidRequestError("option '%s' is only used by provider %s, not by %s"
                                          % (option, other.provider, backend.provider))


def connection_params(params: Dict[str, Any], backend: Type[SnapshotBackend]) -> Dict[str, Any]:
    return {name: params.get(name) for name in backend.connection_options}


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
    module.fail_json(**result)


def run_snapshot_module(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]], module_name: str) -> None:
    progress: List[str] = []

    def report(line: str) -> None:
        progress.append(line)
        module.log(line)

    try:
        backend_cls = choose_backend(module, backends)
        refuse_foreign_spec_options(module.params, backend_cls, backends)
        request = build_request(module.params, backend_cls, module_name)
        request.validate()
        with backend_cls(connection_params(module.params, backend_cls)) as backend:
            engine = SnapshotEngine(backend, check_mode=module.check_mode, diff=module._diff,
                                    wait_policy=WaitPolicy(timeout=float(module.params['timeout'])),
                                    progress=report)
            result = engine.run(request)
    except SavepointError as exc:
        fail(module, exc, progress)
        return
    warnings = result.pop('warnings', [])
    for warning in warnings:
        module.warn(warning)
    if progress:
        result['progress'] = progress
    module.exit_json(**result)


def run_info_module(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]]) -> None:
    try:
        backend_cls = choose_backend(module, backends)
        refs = guest_refs(module.params, backend_cls)
        with backend_cls(connection_params(module.params, backend_cls)) as backend:
            result = SnapshotEngine(backend).info(refs or None)
    except SavepointError as exc:
        fail(module, exc, [])
        return
    module.exit_json(**result)


def hide_secrets(module: AnsibleModule, backends: Sequence[Type[SnapshotBackend]]) -> None:
    """Secrets inside options that cannot be no_log as a whole (OpenStack's ``cloud`` as a dict):
    masked in every output like no_log values."""
    for backend in backends:
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

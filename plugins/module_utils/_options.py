# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which task option applies to which state, declared once for every module.

The argument spec gives these options no default, so the module can tell an
option the task set from one it did not; the documented defaults are filled
in here. An option set for a state it does not apply to is refused, never
silently ignored. Pure logic: no Ansible import, unit-tested directly.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from ._errors import InvalidRequestError
from ._model import check_text
from ._ownership import DEFAULT_OWNER

STATES = ('present', 'absent', 'reverted', 'pruned')
#: the longest timeout accepted (a week): a larger number is a typo, and time arithmetic must not overflow
MAX_TIMEOUT = 7 * 86400
#: the most guests worked on at once: a larger number is a typo (and would open that many provider tasks)
MAX_PARALLEL = 1000
#: ``parallel`` when not set, per provider. libvirt: every live snapshot pauses its guest while QEMU
#: writes the state, and the guests share one host's disks, so few at once keep each pause short;
#: vCenter queues tasks per host itself and answers many at once; Nova/Glance snapshots upload whole
#: images, so a handful at a time keeps the image service from being flooded.
PARALLEL_DEFAULTS: Dict[str, int] = {'libvirt': 4, 'vmware': 32, 'openstack': 8}
#: ``parallel`` for a provider not in the table
DEFAULT_PARALLEL = 8

#: option -> (documented default, states it applies to)
TASK_OPTIONS: Dict[str, Tuple[Any, Tuple[str, ...]]] = {
    'snapshot_name': (None, ('present', 'absent', 'reverted')),
    'description': ('', ('present',)),
    'memory': (None, ('present',)),
    'quiesce': ('never', ('present',)),
    'kind': ('internal', ('present',)),
    'expires_in': (None, ('present',)),
    'owner': (DEFAULT_OWNER, ('present', 'pruned')),
    'power_state': ('restore', ('reverted',)),
    'remove_children': (False, ('absent',)),
    'remove_all': (False, ('absent',)),
    'keep_last': (None, ('pruned',)),
    'older_than': (None, ('pruned',)),
    'expired': (False, ('pruned',)),
    'all_or_nothing': (True, ('present',)),
    'wait': (True, ('present', 'absent', 'reverted')),
    'timeout': (600, STATES),
    'snapshot_id': (None, ('present', 'absent', 'reverted')),
    'new_snapshot_name': (None, ('present',)),
    'new_description': (None, ('present',)),
    'consolidate': ('auto', ('absent', 'pruned')),
    # None: the provider's default (PARALLEL_DEFAULTS), filled in by parallel_default()
    'parallel': (None, STATES),
}

#: options that describe a snapshot to create, so they make no sense in a rename
CREATE_ONLY = ('description', 'memory', 'quiesce', 'kind', 'expires_in')

#: string options where an empty string is a real value, not "unset"
EMPTY_ALLOWED = ('description', 'new_description')
#: string options that may span lines (every other string is one line without control characters)
MULTILINE = ('description', 'new_description')


def resolve_task_options(params: Mapping[str, Any], state: str,
                         provider_options: Mapping[str, Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``params`` with the documented defaults filled in; raises for an option that does not
    apply to ``state``. ``provider_options`` are the backend's create-only options (spec_options)."""
    resolved = dict(params)
    wrong = [name for name, (_default, states) in TASK_OPTIONS.items()
             if state not in states and params.get(name) is not None]
    for name, entry in (provider_options or {}).items():
        if state != 'present' and params.get(name) not in (None, entry.get('default')):
            wrong.append(name)
    if wrong:
        raise InvalidRequestError('%s %s not apply to state=%s (%s)' % (
            ', '.join(wrong), 'does' if len(wrong) == 1 else 'do', state,
            '; '.join('%s: %s' % (name, 'state=' + '/'.join(TASK_OPTIONS[name][1]) if name in TASK_OPTIONS
                                  else 'state=present') for name in wrong)))
    renaming = params.get('new_snapshot_name') is not None or params.get('new_description') is not None
    if state == 'present' and renaming:
        creating = [name for name in CREATE_ONLY if params.get(name) is not None]
        if creating:
            verb = 'does' if len(creating) == 1 else 'do'
            raise InvalidRequestError('%s %s not apply to a rename (new_snapshot_name/new_description): they '
                                      'describe a snapshot to create' % (', '.join(creating), verb))
    for name, (default, _states) in TASK_OPTIONS.items():
        if resolved.get(name) is None:
            resolved[name] = default
    timeout = resolved['timeout']
    if not 1 <= timeout <= MAX_TIMEOUT:
        raise InvalidRequestError('timeout must be between 1 and %d seconds, not %s'
                                  % (MAX_TIMEOUT, timeout if abs(timeout) < 10 ** 12 else 'a %d-digit number'
                                     % len(str(abs(timeout)))))
    check_parallel(resolved['parallel'])
    return resolved


def parallel_default(provider: str) -> int:
    """How many guests a bulk task works on at once when ``parallel`` is not set. A task across
    providers (their names joined by '+', _composite.py) takes the smallest of its providers' defaults."""
    return min(PARALLEL_DEFAULTS.get(name, DEFAULT_PARALLEL) for name in provider.split('+'))


def check_parallel(value: Any, name: str = 'parallel') -> None:
    """``parallel``: None (the provider's default) or a whole number from 1 to MAX_PARALLEL. ``name`` is
    what the user set (a role's ``guard_parallel``), so the message names the variable they can fix."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value)
        raise InvalidRequestError('%s must be a whole number of guests between 1 and %d, not %s'
                                  % (name, MAX_PARALLEL, shown if len(shown) <= 40
                                     else 'a %s of %d characters' % (type(value).__name__, len(shown))))
    if not 1 <= value <= MAX_PARALLEL:
        raise InvalidRequestError('%s must be between 1 (one guest after the other) and %d, not %s'
                                  % (name, MAX_PARALLEL, value if abs(value) < 10 ** 12
                                     else 'a %d-digit number' % len(str(abs(value)))))


def parallel_variable_error(value: Any, name: str) -> Optional[str]:
    """What is wrong with a role's or playbook's ``parallel`` variable (None: nothing, or unset).

    Read as the module's argument spec reads an int (``-e guard_parallel=4`` arrives as the string
    '4'); an empty string or 0 is refused, never taken for "unset" (that would be the provider's
    default, which the user did not ask for)."""
    if isinstance(value, str) and re.fullmatch(r'\s*[+-]?[0-9]{1,4000}\s*', value):
        value = int(value)
    try:
        check_parallel(value, name)
    except InvalidRequestError as exc:
        return exc.msg
    return None


def check_strings(params: Mapping[str, Any], secret: Iterable[str] = ()) -> None:
    """Empty strings and control characters in any option are errors naming the option.

    An empty string would otherwise fall back to a default the user did not ask
    for (``uri: ''`` -> qemu:///system, ``owner: ''`` -> the default owner); a control
    character can fake lines of the --diff tree, and NUL breaks every SDK.
    """
    secret = set(secret)
    for name, value in params.items():
        if isinstance(value, str):
            if value == '' and name not in EMPTY_ALLOWED:
                raise InvalidRequestError("%s must not be empty: leave it unset for its default" % name)
            if name not in secret:
                check_text(value, name, multiline=name in MULTILINE)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    if not item.strip():
                        raise InvalidRequestError('%s must not contain an empty entry' % name)
                    check_text(item, '%s entry' % name)

# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A provider SDK imported on first use, not when the collection is imported.

The provider-neutral modules carry every backend, and a libvirt task should not pay
for importing pyVmomi or openstacksdk (a third of a second each). A backend names the
SDK objects it needs as strings; this module imports no SDK of its own.
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any, Dict


def _resolve(spec: str) -> Any:
    """``'package.module'`` or ``'package.module:attribute'`` (an attribute may be a submodule)."""
    module_name, colon, attribute = spec.partition(':')
    module = importlib.import_module(module_name)
    if not colon:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:  # a submodule the package does not import itself, as `from x import y` would find it
        return importlib.import_module('%s.%s' % (module_name, attribute))


def import_on_first_use(namespace: Dict[str, Any], error_name: str, **names: str) -> bool:
    """Bind each of ``names`` (global name -> spec) in ``namespace`` (a backend module's
    ``globals()``) the first time; True once all are there. On ImportError nothing is
    bound and ``namespace[error_name]`` holds the traceback, for the module's failure message."""
    if all(namespace.get(name) is not None for name in names):
        return True
    try:
        found = {name: _resolve(spec) for name, spec in names.items()}
    except ImportError:
        namespace[error_name] = traceback.format_exc()
        return False
    namespace.update(found)
    return True

"""The provider contract suite: every test runs once per provider harness.

In-process harnesses always run; a harness with a mark needs its real service,
which its start() brings up -- and a failure there fails the tests, never skips them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _harness_classes():
    classes = []
    for path in sorted(HERE.glob('harness_*.py')):
        module = importlib.import_module('contract.%s' % path.stem)
        classes.extend(module.HARNESSES)
    return classes


HARNESS_CLASSES = _harness_classes()


def _params():
    params = []
    for cls in HARNESS_CLASSES:
        marks = [getattr(pytest.mark, cls.mark)] if cls.mark else []
        params.append(pytest.param(cls, id=cls.name, marks=marks))
    return params


@pytest.fixture(scope='session')
def _started():
    started = {}
    yield started
    for harness in started.values():
        harness.stop()


@pytest.fixture(params=_params())
def provider(request, _started):
    cls = request.param
    if cls not in _started:
        harness = cls()
        harness.start()
        _started[cls] = harness
    harness = _started[cls]
    yield harness
    harness.cleanup()

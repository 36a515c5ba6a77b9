"""Time bounds in tests, derived from the timeout the test configured -- never a bare number of seconds.

A test may check that a step is *bounded* by the timeout it was given (it ends, at or soon after
that deadline, instead of hanging); it never checks that something is fast: speed claims belong
in benchmarks/, measured side by side. ``upper_bound`` turns a configured timeout into the latest
acceptable end: the step may use all of its timeout, and the untimed work around it
(connecting, cleaning up, reading back, on a loaded 2-core CI machine) gets SLACK times that again.
A hang is unbounded and an unset timeout means the SDK's own (minutes or none), so the bound still
tells the two apart.
"""

from __future__ import annotations

SLACK = 9  # the untimed work around a timed step may take up to SLACK x its timeout


def upper_bound(timeout: float) -> float:
    """Latest acceptable end, in seconds after its start, of a step bounded by ``timeout``."""
    return timeout * (1 + SLACK)

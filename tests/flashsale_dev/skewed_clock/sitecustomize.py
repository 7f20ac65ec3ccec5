"""A process whose wall clock is off: `time.time()` shifted by SKEWED_CLOCK_SECONDS.

Put this directory on a process's PYTHONPATH (with SKEWED_CLOCK_SECONDS set) and Python imports it
at start, before any of the product's code: a pod whose clock drifted, for the tests that prove the
sale's times come from Redis' clock alone. Test platform only; never shipped.
"""

import os
import time

_SKEW = float(os.environ.get("SKEWED_CLOCK_SECONDS", "0"))

if _SKEW:
    _real_time = time.time

    def _skewed_time() -> float:
        return _real_time() + _SKEW

    time.time = _skewed_time

"""`python -m flashsale_dev.operator_test_build`: the operator as the test platform runs it.

The local node agent runs this for the image `flashsale/operator-test` (cluster/images.py), which
only the test platform's install uses (`install_operator(..., test_build=True)`, the pytest session's
operator): it installs the kill points (operator_kill_points.py) through the product's checkpoint
seam, then starts the real operator, unchanged. `make up`, the demo and the benchmarks run the plain
`flashsale/operator`, as a real cluster does.
"""

from __future__ import annotations

from flashsale_dev import operator_kill_points
from flashsale_operator import config
from flashsale_operator.__main__ import main as run_operator


def main() -> None:
    operator_kill_points.install(config.load().redis_url)
    run_operator()


if __name__ == "__main__":
    main()

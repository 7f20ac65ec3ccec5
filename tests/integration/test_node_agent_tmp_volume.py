"""A pod's emptyDir mounted at /tmp (as every hardened pod has) hides nothing the node agent mounts.

The node's state directory (the pod's files, its staging, its working directory) lives under /tmp
in the tests; the mount namespace pins them before it mounts anything, so a volume over /tmp in the
pod does not hide the Secret files mounted after it, nor the local image's files (a checkout under /tmp).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flashsale_dev.cluster.images import image_roots
from flashsale_dev.cluster.node_agent import mount_ns

pytestmark = pytest.mark.integration


def test_an_empty_dir_over_tmp_still_gets_the_pods_files_and_its_working_directory(tmp_path: Path) -> None:
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip(f"the pytest base directory {tmp_path} is not under /tmp")
    empty_dir, work, secret = tmp_path / "empty", tmp_path / "work", tmp_path / "secret"
    empty_dir.mkdir()
    work.mkdir()
    (work / "left-by-the-node").write_text("work")
    secret.write_text("s3cret")
    plan = {
        "binds": [
            {"source": str(empty_dir), "target": "/tmp", "read_only": False},
            {"source": str(secret), "target": "/var/run/secrets/flashsale-test/key", "read_only": True},
        ],
        "staging": str(tmp_path / "staging"),
        "cwd": str(work),
        "hostname": "pod-a",
        "image": image_roots(),  # as the node agent's plan: the local image's files stay seen
    }
    # What the pod's /tmp shows: nothing, or the way to the image's files when the checkout is under /tmp.
    shown = sorted(
        {Path(root).relative_to("/tmp").parts[0] for root in mount_ns.covered(image_roots(), ["/tmp"])}
    )
    inside = (
        "import os, pathlib; "
        "print(open('/var/run/secrets/flashsale-test/key').read()); "
        "print(open('left-by-the-node').read()); "
        "print(sorted(os.listdir('/tmp'))); "
        "pathlib.Path('/tmp/written-in-the-pod').write_text('x')"
    )
    done = subprocess.run(
        [sys.executable, "-I", mount_ns.__file__, json.dumps(plan), sys.executable, "-I", "-c", inside],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["s3cret", "work", str(shown)]  # the pod's /tmp starts empty
    assert (empty_dir / "written-in-the-pod").read_text() == "x"  # and is the emptyDir

"""The kind tier's pure parts: which OCI archive of `make images` holds which image."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from flashsale_sale import __version__
from kind.kind_platform import IMAGES, REF_NAME, image_archives

pytestmark = pytest.mark.unit


def oci_archive(path: Path, refs: list[str]) -> Path:
    """An OCI archive with just its index (what `image_archives` reads)."""
    index = {"schemaVersion": 2, "manifests": [{"annotations": {REF_NAME: ref}} for ref in refs]}
    data = json.dumps(index).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_each_reference_is_found_in_the_archive_that_names_it(tmp_path: Path) -> None:
    product = oci_archive(
        tmp_path / f"flashsale-{__version__}.oci.tar",
        [f"flashsale/{name}:{__version__}" for name in ("operator", "gateway", "consumer")],
    )
    kafka = oci_archive(tmp_path / f"kafka-{__version__}.oci.tar", [f"flashsale/kafka:{__version__}"])
    (tmp_path / "images.json").write_text("{}")  # not an archive
    found = image_archives(tmp_path)
    assert {ref: found[ref] for ref in IMAGES} == {
        f"flashsale/operator:{__version__}": product,
        f"flashsale/gateway:{__version__}": product,
        f"flashsale/consumer:{__version__}": product,
        f"flashsale/kafka:{__version__}": kafka,
    }

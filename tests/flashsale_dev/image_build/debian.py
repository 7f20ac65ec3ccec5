"""A Debian base rootfs from mmdebstrap, made into the image's first layer.

mmdebstrap (variant `essential` plus the image's packages) uses the host's apt sources, so no mirror
is named here. With SOURCE_DATE_EPOCH set it writes a reproducible tarball; on top of that the base
drops documentation, man pages, locales and info pages, empties the host's hostname and resolv.conf
(a runtime mounts its own), adds the images' non-root user and lists the installed packages for
the lock. Device nodes are left out of the layer: a runtime creates /dev itself.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from flashsale_dev.image_build import oci

SUITE: Final = "bookworm"
VARIANT: Final = "essential"
EXCLUDED: Final = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
APP_UID: Final = 10001
APP_USER: Final = "flashsale"


def mmdebstrap_argv(
    packages: Sequence[str], packages_out: Path, out: Path, remove: Sequence[str] = ()
) -> list[str]:
    dpkg_excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDED]
    user = f"{APP_USER}:x:{APP_UID}:{APP_UID}:FlashSale:/nonexistent:/usr/sbin/nologin"
    customize = [
        # The host's names must not leak into the image (and would break reproducibility).
        ': > "$1/etc/hostname"; : > "$1/etc/resolv.conf"',
        f'echo "{user}" >> "$1/etc/passwd"; echo "{APP_USER}:x:{APP_UID}:" >> "$1/etc/group"',
        f'chroot "$1" dpkg-query -W -f=\'${{Package}}=${{Version}}\\n\' > "{packages_out}"',
        'rm -rf "$1/usr/share/man"',
        *(f'rm -f "$1{path}"' for path in remove),
    ]
    return [
        "mmdebstrap",
        "--quiet",
        f"--variant={VARIANT}",
        f"--include={','.join(packages)}",
        *dpkg_excludes,
        # openjdk's postinst registers its man page as an alternative: the directory must exist.
        '--essential-hook=mkdir -p "$1/usr/share/man/man1"',
        *(f"--customize-hook={hook}" for hook in customize),
        SUITE,
        str(out),
    ]


def keep_member(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Everything but device nodes and the leading `./` of mmdebstrap's names."""
    if member.ischr() or member.isblk() or member.isfifo():
        return None
    member.name = member.name.removeprefix("./") or "."
    if member.islnk():
        member.linkname = member.linkname.removeprefix("./")
    return None if member.name == "." else member


def build_base(
    packages: Sequence[str],
    epoch: int,
    work: Path,
    layer_out: Path,
    comment: str,
    *,
    remove: Sequence[str] = (),
) -> tuple[oci.Layer, str]:
    """Run mmdebstrap into `work`, write the base layer to `layer_out`; returns the layer and the
    `dpkg-query` listing of what got installed."""
    work.mkdir(parents=True, exist_ok=True)
    rootfs_tar, listing = work / "rootfs.tar", work / "packages.txt"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    subprocess.run(mmdebstrap_argv(packages, listing, rootfs_tar, remove), check=True, env=env)
    try:
        layer = oci.layer_from_tar(rootfs_tar, layer_out, epoch, comment, keep_member)
    finally:
        rootfs_tar.unlink(missing_ok=True)
    return layer, listing.read_text()

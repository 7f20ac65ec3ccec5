"""`make images`: every image built or found in the cache by its content key.

Cache layout under $FLASHSALE_CACHE/images: `layers/<sha256>.tar.gz` (the bases' layer blobs),
`bases/<base>-<key>.json` (a built Debian base: its layer and package list; both pruned when unused),
`<archive>.oci.tar` with `<archive>.oci.tar.json` beside it (its key and images), `wheels/` (the
locked wheels) and `images.json` (the --list table). `--update-locks` rebuilds the bases whatever
the cache holds: it records what Debian gives today.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from flashsale_dev.image_build import debian, keys, locks, oci, product, pylock, recipes, trees
from flashsale_dev.paths import cache_dir, kafka_libs, versions

PACKAGE_DIR: Final = Path(__file__).parent


@dataclass
class Context:
    repo: Path
    version: str
    update_locks: bool = False
    strict_locks: bool = False  # Debian drift stops the build (a release) instead of a warning
    cache: Path = field(default_factory=lambda: cache_dir() / "images")
    lock: locks.DebianLock = field(init=False)
    # Bases already found or built in this run, so every image of the run sees the same one.
    bases: dict[str, tuple[oci.Layer, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = locks.parse_debian_lock(self.debian_lock.read_text())

    @property
    def manifests(self) -> Path:
        return self.repo / "manifests" / "images"

    @property
    def debian_lock(self) -> Path:
        return self.manifests / "debian.lock"

    @property
    def requirements_lock(self) -> Path:
        return self.manifests / "requirements.lock"

    def layer_file(self, layer: oci.Layer) -> Path:
        return self.cache / "layers" / (layer.blob.digest.removeprefix("sha256:") + ".tar.gz")

    def work(self, name: str) -> Path:
        path = self.cache / "work" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


def repo_root() -> Path:
    """The checkout this package runs from (the images are built from a repository, not a wheel)."""
    here = Path(__file__).resolve()
    found = next((p for p in here.parents if (p / "manifests" / "images").is_dir()), None)
    if found is None:
        raise SystemExit("flashsale_dev.image_build: run it from a FlashSale checkout (no manifests/images)")
    return found


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


# What only reads or runs the images (the CLI, the test's bundles) does not change them.
NOT_BUILDING: Final = frozenset({"__main__.py", "bundle.py"})


def builder_files() -> list[Path]:
    return [path for path in keys.files_under(PACKAGE_DIR) if path.name not in NOT_BUILDING]


def base_key(ctx: Context, base: recipes.Base) -> str:
    locked = ctx.lock.bases.get(base.name, {})
    listing = "".join(f"{name}={version}\n" for name, version in sorted(locked.items()))
    return keys.content_key(
        [PACKAGE_DIR / "debian.py", PACKAGE_DIR / "oci.py"],
        PACKAGE_DIR,
        base.name,
        *base.packages,
        *base.remove,
        listing,
        str(ctx.lock.epoch),
    )


def base_layer(ctx: Context, base: recipes.Base) -> tuple[oci.Layer, str]:
    """The base's layer (built when its key is new) and its key."""
    if base.name not in ctx.bases:
        ctx.bases[base.name] = _find_or_build_base(ctx, base)
    return ctx.bases[base.name]


def _find_or_build_base(ctx: Context, base: recipes.Base) -> tuple[oci.Layer, str]:
    key = base_key(ctx, base)
    record = ctx.cache / "bases" / f"{base.name}-{key}.json"
    if record.is_file() and not ctx.update_locks:
        data = json.loads(record.read_text())
        layer = oci.Layer.from_json(data["layer"])
        if ctx.layer_file(layer).is_file():
            return layer, key
    log(f"building Debian base {base.name!r} ({', '.join(base.packages)}) with mmdebstrap")
    started = time.monotonic()
    work = ctx.work(f"base-{base.name}")
    partial = work / "layer.tar.gz"
    layer, listing = debian.build_base(
        base.packages, ctx.lock.epoch, work, partial, f"debian {debian.SUITE} {base.name}", remove=base.remove
    )
    got = locks.parse_dpkg_list(listing)
    if ctx.update_locks:
        ctx.lock = locks.DebianLock(ctx.lock.epoch, {**ctx.lock.bases, base.name: got})
        ctx.debian_lock.write_text(locks.render_debian_lock(ctx.lock))
        key = base_key(ctx, base)
        record = ctx.cache / "bases" / f"{base.name}-{key}.json"
    else:
        warning = locks.check_base(base.name, ctx.lock.bases.get(base.name), got, strict=ctx.strict_locks)
        if warning:
            log(f"WARNING: {warning} (these images' digests are not the recorded ones)")
    _store_layer(ctx, layer, partial)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"layer": layer.to_json(), "packages": got}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    log(f"base {base.name!r}: {layer.blob.size / 1e6:.0f} MB compressed in {time.monotonic() - started:.0f}s")
    return layer, key


def _store_layer(ctx: Context, layer: oci.Layer, partial: Path) -> None:
    target = ctx.layer_file(layer)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.replace(target)


@dataclass(frozen=True)
class Recipe:
    """An archive: an optional Debian base, one own layer built by `tree`, and its tags."""

    archive: str
    base: recipes.Base | None
    inputs: Callable[[Context], list[Path]]
    key_strings: Callable[[Context], list[str]]  # what goes in besides files (versions)
    tree: Callable[[Context, Path], Path]
    configs: Callable[[Context], dict[str, oci.ImageConfig]]
    owners: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def build_recipe(ctx: Context, recipe: Recipe) -> tuple[list[dict[str, Any]], bool]:
    """The archive's images (from the cache when its key is unchanged) and whether it was built."""
    layers: list[oci.Layer] = []
    extra = [ctx.version, str(ctx.lock.epoch), *recipe.key_strings(ctx)]
    if recipe.base is not None:
        base, key = base_layer(ctx, recipe.base)
        layers.append(base)
        extra.append(key)
    key = keys.content_key([*recipe.inputs(ctx), *builder_files()], ctx.repo, *extra)
    archive = ctx.cache / f"{recipe.archive}-{ctx.version}.oci.tar"
    stamp = archive.with_name(archive.name + ".json")
    if archive.is_file() and stamp.is_file():
        recorded = json.loads(stamp.read_text())
        if recorded["key"] == key:
            return list(recorded["images"]), False
    log(f"building {archive.name}")
    started = time.monotonic()
    work = ctx.work(recipe.archive)
    root = recipe.tree(ctx, work / "tree")
    partial = work / "layer.tar.gz"
    own = oci.layer_from_dir(
        root, partial, ctx.lock.epoch, f"flashsale {recipe.archive} layer", recipe.owners
    )
    _store_layer(ctx, own, partial)
    layers.append(own)
    tags = [oci.Tagged(ref, config) for ref, config in recipe.configs(ctx).items()]
    files = {layer.blob.digest: ctx.layer_file(layer) for layer in layers}
    built = oci.write_archive(archive, layers, files, tags, ctx.lock.epoch)
    ctx.layer_file(own).unlink()  # the archive holds it; only the bases' layers are shared
    shutil.rmtree(work, ignore_errors=True)
    size = sum(layer.blob.size for layer in layers)
    images = [
        {"ref": image.ref, "digest": image.manifest.digest, "archive": archive.name, "compressed_bytes": size}
        for image in built
    ]
    stamp.write_text(json.dumps({"key": key, "images": images}, indent=1))
    log(f"{archive.name}: {size / 1e6:.0f} MB compressed in {time.monotonic() - started:.0f}s")
    return images, True


def _product_tree(ctx: Context, root: Path) -> Path:
    work = root.parent
    built = product.build_layer_tree(ctx.repo, ctx.requirements_lock, ctx.cache / "wheels", work)
    built.rename(root)
    return root


def all_recipes() -> list[Recipe]:
    def kafka_version(_: Context) -> str:
        return versions()["KAFKA_VERSION"]

    return [
        Recipe(
            archive="flashsale",
            base=recipes.PYTHON_BASE,
            inputs=lambda ctx: [ctx.requirements_lock, *keys.product_sources(ctx.repo)],
            key_strings=lambda ctx: [],
            tree=_product_tree,
            configs=lambda ctx: recipes.product_configs(ctx.version),
        ),
        Recipe(
            archive="flashsale-kafka",
            base=recipes.JRE_BASE,
            inputs=lambda ctx: [
                *keys.files_under(ctx.manifests / "kafka"),
                *sorted(kafka_libs().glob("*.jar")),
            ],
            key_strings=lambda ctx: [kafka_version(ctx)],
            tree=lambda ctx, root: trees.kafka_tree(kafka_libs(), ctx.manifests / "kafka", root),
            configs=lambda ctx: recipes.kafka_config(ctx.version, kafka_version(ctx)),
            owners=trees.KAFKA_OWNED,
        ),
        Recipe(
            archive="flashsale-pause",
            base=None,
            inputs=lambda ctx: keys.files_under(ctx.manifests / "pause"),
            key_strings=lambda ctx: [trees.gcc_version()],
            tree=lambda ctx, root: trees.pause_tree(ctx.manifests / "pause" / "pause.c", root),
            configs=lambda ctx: recipes.pause_config(ctx.version),
        ),
    ]


def build_all(ctx: Context) -> tuple[list[dict[str, Any]], int]:
    """Every image; returns them and how many archives had to be built."""
    os.umask(0o022)  # file modes in the layers must not depend on the caller's umask
    ctx.cache.mkdir(parents=True, exist_ok=True)
    with (ctx.cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another `make images` (or the image test) waits its turn
        return _build_all_locked(ctx)


def _build_all_locked(ctx: Context) -> tuple[list[dict[str, Any]], int]:
    if ctx.update_locks:  # (one base at a time then: each rewrites debian.lock)
        ctx.requirements_lock.write_text(pylock.resolve(ctx.repo / "pyproject.toml"))
    else:
        # mmdebstrap waits on downloads and dpkg as much as on the CPU: two bases overlap well.
        with ThreadPoolExecutor(max_workers=len(recipes.BASES)) as pool:
            list(pool.map(lambda base: base_layer(ctx, base), recipes.BASES))
    images: list[dict[str, Any]] = []
    built = 0
    for recipe in all_recipes():
        found, rebuilt = build_recipe(ctx, recipe)
        images += found
        built += rebuilt
    (ctx.cache / "images.json").write_text(json.dumps(images, indent=1))
    _prune_bases(ctx)
    return images, built


def _prune_bases(ctx: Context) -> None:
    """Forget the bases this run did not use (an older lock or builder): the cache does not grow
    with every Debian update."""
    records = {f"{name}-{key}.json" for name, (_, key) in ctx.bases.items()}
    blobs = {ctx.layer_file(layer).name for layer, _ in ctx.bases.values()}
    for record in (ctx.cache / "bases").glob("*.json"):
        if record.name not in records:
            record.unlink()
    for blob in (ctx.cache / "layers").glob("*.tar.gz"):
        if blob.name not in blobs:
            blob.unlink()

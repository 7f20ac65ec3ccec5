"""The recorded versions of the images: the Debian lock reads back what it writes, a build that got
other package versions is refused with the differences named, and the PyPI lock pins every wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashsale_dev.image_build import keys, locks, pylock

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_the_debian_lock_round_trips() -> None:
    lock = locks.DebianLock(1_764_547_200, {"python": {"python3": "3.11.2-1+b1", "bash": "5.2.15-2+b7"}})
    text = locks.render_debian_lock(lock)
    assert locks.parse_debian_lock(text) == lock
    assert text.index("bash=") < text.index("python3=")


def test_the_committed_debian_lock_records_every_base() -> None:
    lock = locks.parse_debian_lock((REPO / "manifests/images/debian.lock").read_text())
    assert set(lock.bases) == {"python", "jre"}
    assert "python3" in lock.bases["python"]
    assert "openjdk-17-jre-headless" in lock.bases["jre"]


def test_a_build_matching_the_lock_passes() -> None:
    locks.check_base("python", {"bash": "1"}, {"bash": "1"})


def test_drift_is_a_warning_naming_each_change_unless_strict() -> None:
    warning = locks.check_base("python", {"bash": "1"}, {"bash": "2"}, strict=False)
    assert warning is not None
    assert "~ bash: 1 -> 2" in warning
    assert locks.check_base("python", {"bash": "1"}, {"bash": "1"}, strict=False) is None


def test_drift_names_each_changed_new_and_gone_package() -> None:
    with pytest.raises(locks.LockError, match="--update-locks") as raised:
        locks.check_base("python", {"bash": "1", "gone": "1"}, {"bash": "2", "new": "1"})
    message = str(raised.value)
    assert "~ bash: 1 -> 2" in message
    assert "+ new=1 (new)" in message
    assert "- gone=1 (gone)" in message


def test_an_unrecorded_base_asks_for_update_locks() -> None:
    with pytest.raises(locks.LockError, match=r"no \[jre\] section"):
        locks.check_base("jre", None, {"bash": "1"})


def test_dpkg_query_output_is_parsed() -> None:
    assert locks.parse_dpkg_list("bash=5.2\nlibc6=2.36-9\n") == {"bash": "5.2", "libc6": "2.36-9"}


def test_the_pypi_lock_pins_a_hash_for_every_dependency_closure_member() -> None:
    text = (REPO / "manifests/images/requirements.lock").read_text()
    pins = [line for line in text.splitlines() if "==" in line]
    hashes = [line for line in text.splitlines() if "--hash=sha256:" in line]
    assert len(pins) == len(hashes) > 0
    for dependency in pylock.project_dependencies(REPO / "pyproject.toml"):
        name = pylock.canonical_name(dependency.split("[")[0].split("==")[0])
        assert any(pin.startswith(f"{name}==") for pin in pins), name


def test_pip_report_entries_render_sorted_with_their_hash() -> None:
    def entry(name: str, version: str, digest: str) -> dict[str, object]:
        return {
            "metadata": {"name": name, "version": version},
            "download_info": {"archive_info": {"hashes": {"sha256": digest}}},
        }

    text = pylock.render_lock([entry("Zeta", "1.0", "bb"), entry("alpha", "2.0", "aa")])
    assert text.endswith("alpha==2.0 \\\n    --hash=sha256:aa\nzeta==1.0 \\\n    --hash=sha256:bb\n")


def test_the_product_key_covers_pyproject_and_the_packages_it_finds() -> None:
    sources = {p.relative_to(REPO).as_posix() for p in keys.product_sources(REPO)}
    assert "pyproject.toml" in sources
    assert "services/flashsale_sale/__init__.py" in sources
    assert "operator/flashsale_operator/__init__.py" in sources
    assert not any("__pycache__" in s for s in sources)


def test_a_content_key_ignores_mtimes_but_not_contents(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.write_text("a")
    key = keys.content_key([one], tmp_path, "extra")
    one.touch()
    assert keys.content_key([one], tmp_path, "extra") == key
    one.write_text("b")
    assert keys.content_key([one], tmp_path, "extra") != key


def test_without_packages_find_the_key_covers_the_product_directories(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.setuptools]\npackages = ["a"]\n')
    (tmp_path / "services/a").mkdir(parents=True)
    (tmp_path / "services/a/__init__.py").write_text("")
    sources = {p.relative_to(tmp_path).as_posix() for p in keys.product_sources(tmp_path)}
    assert sources == {"pyproject.toml", "services/a/__init__.py"}


def test_the_readme_pyproject_names_goes_into_the_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nreadme = "README.md"\n')
    (tmp_path / "README.md").write_text("# x\n")
    sources = {p.relative_to(tmp_path).as_posix() for p in keys.product_sources(tmp_path)}
    assert sources == {"pyproject.toml", "README.md"}

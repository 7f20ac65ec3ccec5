"""Project images map to commands the way Docker composes ENTRYPOINT, CMD, command and args."""

from __future__ import annotations

import sys

import pytest

from flashsale_dev.cluster.images import (
    PROJECT_IMAGES,
    ImageSpec,
    compose_argv,
    find_image,
    is_project_image,
    split_image,
)

pytestmark = pytest.mark.unit

SPEC = ImageSpec(("/bin/server", "--serve"), cmd=("--port", "8080"))


@pytest.mark.parametrize(
    ("image", "repository", "tag"),
    [
        ("flashsale/echo:dev", "flashsale/echo", "dev"),
        ("flashsale/echo", "flashsale/echo", "latest"),
        ("flashsale/echo@sha256:abc", "flashsale/echo", "sha256:abc"),
        ("localhost:5000/flashsale/echo", "localhost:5000/flashsale/echo", "latest"),
        ("localhost:5000/flashsale/echo:1.2", "localhost:5000/flashsale/echo", "1.2"),
    ],
)
def test_images_split_into_repository_and_tag(image: str, repository: str, tag: str) -> None:
    assert split_image(image) == (repository, tag)


def test_the_echo_image_runs_the_echo_server_with_this_python() -> None:
    spec = find_image("flashsale/echo:any-tag")
    assert spec is PROJECT_IMAGES["flashsale/echo"]
    assert compose_argv(spec, None, None) == [sys.executable, "-m", "flashsale_dev.echo_server"]


def test_only_flashsale_repositories_are_project_images() -> None:
    assert is_project_image("flashsale/unknown:dev")
    assert find_image("flashsale/unknown:dev") is None
    assert not is_project_image("shop.example/web:1.0")
    assert not is_project_image("nginx")


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        (None, None, ["/bin/server", "--serve", "--port", "8080"]),
        (None, ["--port", "9090"], ["/bin/server", "--serve", "--port", "9090"]),
        (["/bin/other"], None, ["/bin/other"]),  # a command drops the image's CMD too
        (["/bin/other"], ["-v"], ["/bin/other", "-v"]),
    ],
)
def test_command_replaces_entrypoint_and_args_replace_cmd(
    command: list[str] | None, args: list[str] | None, argv: list[str]
) -> None:
    assert compose_argv(SPEC, command, args) == argv


def test_the_sale_images_run_the_flashsale_console_script() -> None:
    for image, command in (("flashsale/gateway:1.0", "gateway"), ("flashsale/consumer:1.0", "consumer")):
        spec = find_image(image)
        assert spec is not None
        argv = compose_argv(spec, None, None)
        assert argv[1:] == ["-m", "flashsale_cli", command]

"""`flashsale token` and `--help`: tokens in the order given and nothing else on stdout; every
command's help from the installed console script, with no settings and without loading a service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flashsale_cli import main as cli
from flashsale_sale import tokens

KEY = "k" * 32  # the platform's user-token key
SALE = "shop/kettle"
SALE_KEY = tokens.sale_token_key(KEY.encode(), SALE).encode()  # what the sale's gateway holds


def test_token_prints_exactly_the_tokens_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(["token", "--sale", SALE, "--key", KEY, "--user", "b", "--user", "a", "--ttl", "7200"]) == 0
    )
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert out.endswith("\n")
    assert len(lines) == 2
    assert [tokens.verify(SALE_KEY, line) for line in lines] == ["b", "a"]


def test_token_reads_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLASHSALE_USER_TOKEN_KEY", KEY)
    assert cli.main(["token", "--sale", SALE, "--user", "alice"]) == 0
    assert tokens.verify(SALE_KEY, capsys.readouterr().out.strip()) == "alice"


def test_token_mints_thousands_from_a_users_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = [f"user-{i}" for i in range(5_000)]
    (tmp_path / "users").write_text("\n".join(users) + "\n")
    argv = ["token", "--sale", SALE, "--key", KEY, "--user", "first", "--users-file", str(tmp_path / "users")]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5_001
    assert tokens.verify(SALE_KEY, lines[0]) == "first"
    assert tokens.verify(SALE_KEY, lines[-1]) == "user-4999"


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "--sale", SALE, "--user", "a"],
        ["token", "--sale", SALE, "--key", KEY],
        ["token", "--sale", SALE, "--key", KEY, "--user", "bad user"],
        ["token", "--sale", "kettle", "--key", KEY, "--user", "a"],
        ["token", "--payment", "--sale", SALE, "--user", "a"],
    ],
)
def test_token_without_key_or_users_or_with_a_bad_user_exits_2_and_prints_nothing(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FLASHSALE_USER_TOKEN_KEY", raising=False)
    monkeypatch.setenv("FLASHSALE_PAYMENT_KEY", "p" * 32)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("flashsale token: ")


def test_token_without_a_sale_exits_2_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token is good for one sale only: there is no platform-wide token to mint any more."""
    monkeypatch.setenv("FLASHSALE_USER_TOKEN_KEY", KEY)
    assert cli.main(["token", "--user", "alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--sale NAMESPACE/NAME" in captured.err


def test_token_payment_mints_the_sale_s_payment_credential(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLASHSALE_PAYMENT_KEY", "p" * 32)
    monkeypatch.setenv("FLASHSALE_USER_TOKEN_KEY", KEY)
    assert cli.main(["token", "--payment", "--sale", SALE, "--ttl", "600"]) == 0
    credential = capsys.readouterr().out.strip()
    sale_payment_key = tokens.sale_payment_key(b"p" * 32, SALE).encode()
    assert tokens.verify_payment(sale_payment_key, credential) == SALE
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(SALE_KEY, credential)  # a payment credential is no user token


@pytest.mark.parametrize("command", [[], ["consumer"], ["gateway"], ["migrate"], ["token"]])
def test_help_needs_no_settings(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: flashsale" in capsys.readouterr().out


COMMANDS = ["gateway", "consumer", "token", "migrate", "prewarm", "reconcile", "retire", "load"]
SERVICES = ("flashsale_gateway", "flashsale_consumer", "flashsale_operator")
THEIR_LIBRARIES = ("granian", "fastapi", "confluent_kafka", "kopf", "kubernetes", "redis", "psycopg")
LOAD_CLIENT = ("flashsale_load.client", "aiohttp")  # `flashsale load` runs them; its --help does not


def _without_settings() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("FLASHSALE_")}


@pytest.mark.parametrize("command", COMMANDS)
def test_the_installed_console_script_answers_help_for_every_command(command: str, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("flashsale")  # the venv's `flashsale`, as pip installed it
    done = subprocess.run(
        [str(script), command, "--help"],
        check=False, capture_output=True, text=True, env=_without_settings(), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: flashsale {command}")


def test_help_loads_no_service_nor_its_libraries(tmp_path: Path) -> None:
    """The dispatcher imports a service only inside that service's own command."""
    probe = f"""
import contextlib, io, json, sys
from flashsale_cli.main import main
for command in {COMMANDS!r}:
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        main([command, "--help"])
loaded = [m for m in sys.modules if m.split(".")[0] in {SERVICES + THEIR_LIBRARIES!r} or m in {LOAD_CLIENT!r}]
print(json.dumps(sorted(loaded)))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_without_settings(), cwd=tmp_path,
        check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(done.stdout) == []

"""`flashsale-dev up | down | env | serve | example`: the local platform in the background, for people.

`up` starts a supervisor (`serve`) detached from the terminal, waits until everything answers
(with a cluster: until the FlashSale CRD is Established and the operator's pod is Ready) and
prints `export` lines, among them the platform's FLASHSALE_USER_TOKEN_KEY and FLASHSALE_PAYMENT_KEY
(the keys the shop derives each sale's from) and DATABASE_URL (the schema owner's); the same lines are in
the env file. `down` asks the supervisor to stop (SIGTERM), waits, and removes the state directory.
The supervisor is the parent of every server, so they die with it even if it is SIGKILLed
(PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from flashsale_dev.flashsales import example_sale
from flashsale_dev.operator_install import install_operator
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.process import is_running, processes_mentioning

ENV_FILE = "env"
PID_FILE = "supervisor.pid"
FAILED_FILE = "failed"


def default_state_dir() -> Path:
    return Path(
        os.environ.get("FLASHSALE_STATE_DIR") or Path(tempfile.gettempdir()) / f"flashsale-up-{os.getuid()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flashsale-dev", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $FLASHSALE_STATE_DIR or /tmp")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local platform in the background")
    up.add_argument("--no-cluster", action="store_true", help="middleware only, no Kubernetes")
    up.add_argument("--timeout", type=float, default=300.0)
    serve = commands.add_parser("serve", help="run the platform in the foreground until SIGTERM")
    serve.add_argument("--no-cluster", action="store_true")
    commands.add_parser("down", help="stop the platform started by `up` and remove its state")
    example = commands.add_parser(
        "example", help="examples/flashsale.yaml, starting soon (for kubectl apply -f -)"
    )
    example.add_argument("--starts-in", type=float, default=60.0, help="seconds from now (default 60)")
    commands.add_parser("env", help="print the export lines of the running platform")
    args = parser.parse_args(argv)
    state_dir: Path = (args.state_dir or default_state_dir()).absolute()
    if args.command == "up":
        return _up(state_dir, with_cluster=not args.no_cluster, timeout=args.timeout)
    if args.command == "serve":
        return _serve(state_dir, with_cluster=not args.no_cluster)
    if args.command == "down":
        return _down(state_dir)
    if args.command == "example":
        print(yaml.safe_dump(example_sale(args.starts_in), sort_keys=False), end="")
        return 0
    return _print_env(state_dir)


def _up(state_dir: Path, *, with_cluster: bool, timeout: float) -> int:
    if _supervisor_pid(state_dir):
        print(f"# already running; state in {state_dir}", file=sys.stderr)
        return _print_env(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "flashsale_dev.cli", "--state-dir", str(state_dir), "serve"]
    if not with_cluster:
        argv.append("--no-cluster")
    with (state_dir / "supervisor.log").open("ab") as log:
        supervisor = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while not (state_dir / ENV_FILE).exists():
        if supervisor.poll() is not None or (state_dir / FAILED_FILE).exists() or time.monotonic() > deadline:
            print(
                f"flashsale-dev up failed; supervisor log:\n{_tail(state_dir / 'supervisor.log')}",
                file=sys.stderr,
            )
            _down(state_dir)
            return 1
        time.sleep(0.2)
    print(f"# local platform up; state and logs in {state_dir}", file=sys.stderr)
    return _print_env(state_dir)


def _serve(state_dir: Path, *, with_cluster: bool) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    (state_dir / PID_FILE).write_text(str(os.getpid()))
    platform = LocalPlatform(state_dir / "platform", with_cluster=with_cluster)
    exports: dict[str, str] = {}
    try:
        platform.start()
        if platform.cluster:  # the operator as a pod, from manifests/, configured for this platform
            exports = install_operator(platform.cluster, platform).exports()
    except Exception as error:
        (state_dir / FAILED_FILE).write_text(str(error))
        print(error, file=sys.stderr)
        platform.stop()
        return 1
    try:
        env = platform.shell_exports() + "".join(f"export {k}={v}\n" for k, v in exports.items())
        tmp = state_dir / f".{ENV_FILE}.tmp"
        tmp.write_text(env)
        tmp.replace(state_dir / ENV_FILE)
        print(env, flush=True)
        stop.wait()
    finally:
        platform.stop()
    return 0


def _down(state_dir: Path, timeout: float = 120.0) -> int:
    pid = _supervisor_pid(state_dir)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_running(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if is_running(pid):
            os.kill(pid, signal.SIGKILL)  # its children die with it (PR_SET_PDEATHSIG)
    # Belt and braces: nothing that mentions the state directory may survive.
    for leftover in processes_mentioning(str(state_dir)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
    shutil.rmtree(state_dir, ignore_errors=True)
    print(f"# local platform down; removed {state_dir}", file=sys.stderr)
    return 0


def _print_env(state_dir: Path) -> int:
    env_file = state_dir / ENV_FILE
    if not env_file.exists():
        print(f"no platform running (no {env_file}); run `make up`", file=sys.stderr)
        return 1
    print(env_file.read_text(), end="")
    print(f"# the same lines are in {env_file}", file=sys.stderr)
    return 0


def _supervisor_pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / PID_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if is_running(pid) else None


def _tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


if __name__ == "__main__":
    sys.exit(main())

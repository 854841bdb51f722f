"""A warm parent for `parley` processes: the test suite's command runs, without the import.

Every `parley` command a test runs is its own process: its own argv, environment,
standard streams, exit status, and nothing shared with the test. What it would
otherwise do first, each time, is import the SDK, the command line and their
libraries (most of a short command's time). The zygote does that once: a process
started per test process imports every module of `client_sdk`, then waits on a Unix
socket; for each command it forks, and the child sets the command's environment,
standard streams and argv and runs the console-script entry point exactly as
``parley`` would, then exits with its status.

The child is a process like any other (a test may kill it); only its start is warm.
What needs a cold start (the tests of import laziness) runs ``python`` itself, and
``PARLEY_TEST_ZYGOTE=0`` runs every command that way.

Protocol, one connection per command: the test sends one JSON line (args, env, cwd
and the paths of the files that become stdin, stdout and stderr); the child answers
its pid, then, when it ends, its exit status, one line each.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

ENABLED = os.environ.get("PARLEY_TEST_ZYGOTE", "1") != "0"
START_TIMEOUT = 120.0


def _warm() -> None:
    """Import what any command may need (done once, in the zygote)."""
    import importlib
    import pkgutil

    import client_sdk

    for module in pkgutil.walk_packages(client_sdk.__path__, "client_sdk."):
        importlib.import_module(module.name)


def _exit_status(code: object) -> int:
    """What the interpreter would exit with for ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _child(conn: socket.socket, listener: socket.socket) -> None:
    """Run one command in this forked child and exit; never returns."""
    status = 1
    try:
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        request = json.loads(conn.makefile("rb").readline())
        conn.sendall(f"{os.getpid()}\n".encode())
        for fd, (path, flags) in enumerate(
            (
                (request["stdin"], os.O_RDONLY),
                (request["stdout"], os.O_WRONLY),
                (request["stderr"], os.O_WRONLY),
            )
        ):
            opened = os.open(path, flags)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["parley", *request["args"]]
        from client_sdk.cli.main import main

        try:
            main()
            status = 0
        except SystemExit as exc:
            status = _exit_status(exc.code)
        except BaseException:
            import traceback

            traceback.print_exc()
            status = 1
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(f"{status}\n".encode())
        finally:
            os._exit(status)


def serve(path: str) -> None:
    """The zygote's main loop: warm up, then fork a child per connection."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _warm()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            _child(conn, listener)
        conn.close()


class Zygote:
    """The test process's zygote: started on first use, stopped at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="parley-zygote-"))
        self._socket = str(self._dir / "s")

    def _ensure(self, base_env: Mapping[str, str]) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            Path(self._socket).unlink(missing_ok=True)
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    f"from tests.support.zygote import serve; serve({self._socket!r})",
                ],
                env=dict(base_env),
                cwd=Path(__file__).resolve().parents[2],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                encoding="utf-8",
            )
            assert self._process.stdout is not None
            ready = self._process.stdout.readline()
            if ready.strip() != "ready":
                raise RuntimeError(f"the parley zygote did not start (said {ready!r})")
            atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the zygote (its running children finish on their own)."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._process = None

    def run(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        base_env: Mapping[str, str],
        stdin: str,
        timeout: float,
    ) -> tuple[int, str, str]:
        """Run `parley ARGS...` in a child; its exit status, stdout and stderr."""
        self._ensure(base_env)
        with tempfile.TemporaryDirectory(prefix="parley-run-") as scratch:
            files = {name: Path(scratch) / name for name in ("stdin", "stdout", "stderr")}
            files["stdin"].write_text(stdin, encoding="utf-8")
            files["stdout"].touch()
            files["stderr"].touch()
            request = {
                "args": list(args),
                "env": dict(env),
                "cwd": os.getcwd(),
                **{name: str(path) for name, path in files.items()},
            }
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(timeout)
                conn.connect(self._socket)
                conn.sendall(json.dumps(request).encode() + b"\n")
                answers = conn.makefile("rb")
                pid = int(answers.readline())
                try:
                    line = answers.readline()
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(["parley", *args], timeout) from None
                # A child that died before answering (killed) closed the connection.
                status = int(line) if line.strip() else -signal.SIGKILL
            return (
                status,
                files["stdout"].read_text(encoding="utf-8"),
                files["stderr"].read_text(encoding="utf-8"),
            )


ZYGOTE = Zygote()

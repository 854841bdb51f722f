"""The `parley` command as a subprocess: one-shot runs and long-running followers.

Every run gets an explicit environment (this process's, minus any ``PARLEY_*``,
plus what the caller gives), so a profile is exactly its ``PARLEY_HOME`` and
``PARLEY_PASSPHRASE``. Output of a long-running command is read by a thread
into a queue, so a test awaits each line with a timeout instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.support import zygote
from tests.support.server import parley_command

RUN_TIMEOUT = 60.0
LINE_TIMEOUT = 30.0


def cli_env(**settings: str) -> dict[str, str]:
    """This process's environment without ``PARLEY_*``, plus `settings` (wide, no colour)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(
        {"COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    )
    env.update(settings)
    return env


@dataclass(frozen=True, slots=True)
class CliResult:
    """What one `parley` run did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> CliResult:
        """This result, or an AssertionError that shows the command and its output."""
        assert self.returncode == 0, self.describe()
        return self

    def json(self) -> Any:
        """Stdout parsed as one JSON document."""
        return json.loads(self.ok().stdout)

    def json_lines(self) -> list[Any]:
        """Stdout parsed as one JSON document per line."""
        return [json.loads(line) for line in self.ok().stdout.splitlines() if line.strip()]

    def json_error(self) -> Any:
        """The error of a failed ``--json`` run: one JSON object, the last line on stderr
        (after any warning), with ``code`` and ``message``."""
        assert self.returncode != 0, self.describe()
        assert self.stderr.endswith("\n"), self.describe()
        error = json.loads(self.stderr.splitlines()[-1])
        assert isinstance(error["code"], str), self.describe()
        assert isinstance(error["message"], str), self.describe()
        return error

    def describe(self) -> str:
        """The command, its exit status and its output, for assertion messages."""
        return (
            f"parley {' '.join(self.args)} exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


def run_parley(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    stdin: str | None = None,
    timeout: float = RUN_TIMEOUT,
) -> CliResult:
    """Run `parley ARGS...` to completion and capture its output (forked from the
    warm zygote, tests/support/zygote.py, unless ``PARLEY_TEST_ZYGOTE=0``)."""
    if zygote.ENABLED:
        status, stdout, stderr = zygote.ZYGOTE.run(
            args, env=env, base_env=cli_env(), stdin=stdin or "", timeout=timeout
        )
        return CliResult(tuple(args), status, stdout, stderr)
    completed = subprocess.run(
        [*parley_command(), *args],
        env=dict(env),
        input=stdin if stdin is not None else "",
        capture_output=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    return CliResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def run_parallel(runs: Sequence[tuple[Sequence[str], Mapping[str, str]]]) -> list[CliResult]:
    """Run several independent `parley` commands at once; results in the given order."""
    with ThreadPoolExecutor(max_workers=max(1, len(runs))) as pool:
        futures = [pool.submit(run_parley, args, env=env) for args, env in runs]
        return [future.result() for future in futures]


async def parley(
    args: Sequence[str], *, env: Mapping[str, str], stdin: str | None = None
) -> CliResult:
    """`run_parley` for async tests: the subprocess is waited for off the event loop."""
    return await asyncio.to_thread(run_parley, args, env=env, stdin=stdin)


class CliProcess:
    """A long-running `parley` command whose stdout lines arrive on a queue."""

    def __init__(self, args: Sequence[str], *, env: Mapping[str, str], stderr_path: Path) -> None:
        self.args = tuple(args)
        self.stderr_path = stderr_path
        self._lines: queue.Queue[str | None] = queue.Queue()
        with stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                [*parley_command(), *args],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                encoding="utf-8",
            )
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)  # end of output

    def next_line(self, timeout: float = LINE_TIMEOUT) -> str:
        """The next line of stdout; fails if none comes within `timeout` seconds."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"parley {' '.join(self.args)}: no output within {timeout}s\n{self._stderr()}"
            ) from None
        if line is None:
            self._lines.put(None)  # keep reporting the end
            raise AssertionError(
                f"parley {' '.join(self.args)} ended (exit {self.process.poll()})\n{self._stderr()}"
            )
        return line

    async def next_json(self, seconds: float = LINE_TIMEOUT) -> Any:
        """The next stdout line as JSON, awaited off the event loop for at most `seconds`."""
        return json.loads(await asyncio.to_thread(self.next_line, seconds))

    def _stderr(self) -> str:
        return f"--- stderr ---\n{self.stderr_path.read_text(errors='replace')}"

    def stop(self) -> None:
        """Terminate the command and release its pipe."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()

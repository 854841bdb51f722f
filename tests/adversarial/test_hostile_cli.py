"""The hostile-server harness through the `parley` command, for a few of its attacks.

Alice's profile is pointed at `HttpProxy`, a TCP listener in this test's event
loop in front of the same seam (`talks.server`) and the real app; the `parley`
subprocess knows nothing of it. Each attack of `tests.support.attacks` must end
the command non-zero with one line naming what the server did (a JSON object
with its ``kind`` under ``--json``), after showing only what was verified.
"""

from __future__ import annotations

from tests.support import attacks
from tests.support.attacks import Talks
from tests.support.cli import parley


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


async def test_parley_read_names_a_withheld_tail(talks: Talks, alice_env: dict[str, str]) -> None:
    await attacks.withhold_the_tail(talks)

    result = await parley(["read", talks.room_id], env=alice_env)

    assert result.returncode == 1, result.describe()
    assert "First." in result.stdout
    assert "Second." not in result.stdout
    assert _one_line(result.stderr).startswith(
        "error: verification failed: the server is withholding events: "
    )


async def test_parley_read_json_names_a_dropped_event(
    talks: Talks, alice_env: dict[str, str]
) -> None:
    await attacks.drop_an_event(talks)

    result = await parley(["read", talks.room_id, "--json"], env=alice_env)

    assert result.returncode == 1, result.describe()
    answer = result.json_error()
    assert (answer["code"], answer["kind"]) == ("verification-failed", "dropped")
    assert "the server dropped an event" in answer["message"]


async def test_parley_read_names_a_rolled_back_log(talks: Talks, alice_env: dict[str, str]) -> None:
    await attacks.roll_the_log_back(talks)

    result = await parley(["read", talks.room_id], env=alice_env)

    assert result.returncode == 1, result.describe()
    line = _one_line(result.stderr)
    assert "the server rolled back the log" in line
    assert line.endswith("(the server said: since=5 is beyond the log's size 4)")


async def test_parley_send_json_names_a_stale_roster(
    talks: Talks, alice_env: dict[str, str]
) -> None:
    await attacks.serve_a_stale_roster_to_a_sender(talks)

    result = await parley(
        ["send", talks.room_id, "Bob must not read this.", "--json"], env=alice_env
    )

    assert result.returncode == 1, result.describe()
    answer = result.json_error()
    assert answer["kind"] == "stale-roster"
    assert "sealed to roster version 3" in answer["message"]

"""schemathesis over the server's OpenAPI description, in-process.

A scene is built first on a real SQLite database (a mediator, two parties and an
auditor, enrolled and logged in; a room with a message and an upload), then a
fresh app on that database is handed to schemathesis, which generates requests
for every operation from its description, valid and invalid ones, sends them as
the mediator (so most get past authentication) and checks each answer: never a
5xx, a status the description lists, the content type and the body schema it
gives. Half the generated path parameters are the scene's real ids, so routes
are reached past "no such room" too.

Run it from the test suite (`tests/api/test_api_fuzz.py`, a small budget) or
longer with ``scripts/fuzz-api --examples N``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seed_
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.models import Role
from server.app import create_app
from server.config import Settings
from server.services.identity import IdentityService
from tests.api.factories import create_room, enroll_actor, envelope
from tests.conftest import BASE_URL, settings_for

SKIPPED = {("POST", "/v1/auth/logout")}
"""Operations not fuzzed: logging out would end the session every later request uses
(tests/api/test_auth.py and the stream tests cover it)."""


CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            # Well-formed data the server refuses for what it says is 422 (a signature that
            # does not verify, a key of another length) or 413 (a quota), by the rules of
            # docs/design.md §9. A 400 for schema-valid data would mean the description
            # promises more than the parser takes: a finding.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "413", "422", "429"]
            }
        }
    }
)


@dataclass(frozen=True, slots=True)
class FuzzScene:
    """The database and what is in it: the ids real requests name, and a token."""

    settings: Settings
    token: str
    ids: dict[str, list[str]]


@dataclass
class Findings:
    """What a run found, per operation."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per finding, and the totals."""
        lines = [f"{sum(self.requests.values())} requests over {len(self.requests)} operations"]
        lines.append(
            "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        )
        for operation, problems in sorted(self.failures.items()):
            lines += [f"FAIL {operation}: {p}" for p in problems]
        return "\n".join(lines)


async def build_scene(root: Path) -> FuzzScene:
    """A SQLite database under `root` with people, a room, a message and an upload."""
    settings = settings_for(f"sqlite+aiosqlite:///{root / 'parley.db'}", root).model_copy(
        update={"token_ttl_seconds": 24 * 3600}
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http,
    ):
        identity: IdentityService = app.state.services.identity
        actors = [
            await enroll_actor(http, identity, role=role, name=name)
            for role, name in [
                (Role.MEDIATOR, "Mona"),
                (Role.PARTY, "Alice"),
                (Role.PARTY, "Bob"),
                (Role.AUDITOR, "Audrey"),
            ]
        ]
        mediator, alice, bob, _auditor = actors
        room = await create_room(http, mediator, alice, bob)
        sent = await http.post(
            f"/v1/rooms/{room.room_id}/messages",
            json=envelope(room, mediator).model_dump(mode="json"),
            headers=mediator.headers,
        )
        assert sent.status_code == 201, sent.text
        upload = await http.post(
            f"/v1/rooms/{room.room_id}/uploads",
            json={"ciphertext_size": 64, "chunk_bytes": 16, "sha256": "A" * 43},
            headers=mediator.headers,
        )
    ids = {
        "room_id": [room.room_id],
        "log_id": [room.room_id, DIRECTORY_LOG_ID],
        "account_id": [a.account_id for a in actors],
        "upload_id": [upload.json()["upload_id"]] if upload.status_code == 201 else [],
    }
    return FuzzScene(settings, mediator.token, {k: v for k, v in ids.items() if v})


def _operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in SKIPPED:
            yield operation


def _strategy(operation: Any, ids: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    names = {p.name for p in operation.path_parameters}
    known = {name: st.sampled_from(values) for name, values in ids.items() if name in names}
    strategies = [
        operation.as_strategy(generation_mode=mode)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    if known:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(st.fixed_dictionaries(known).flatmap(_with_ids(operation, mode)))
    return st.one_of(strategies)


def _with_ids(
    operation: Any, mode: GenerationMode
) -> Callable[[dict[str, str]], st.SearchStrategy[Any]]:
    def strategy(real: dict[str, str]) -> st.SearchStrategy[Any]:
        return operation.as_strategy(generation_mode=mode, path_parameters=real)  # type: ignore[no-any-return]

    return strategy


def fuzz(app: FastAPI, scene: FuzzScene, *, examples: int, seed: int | None = None) -> Findings:
    """Run `examples` generated requests per operation against `app`; what was found.
    Without a `seed` the run is derandomized (the same requests every time)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    findings = Findings()
    for operation in _operations(schema):
        label = f"{operation.method.upper()} {operation.path}"
        problems: list[str] = []
        run = settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=seed is None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )(given(case=_strategy(operation, scene.ids))(_checker(label, scene, findings, problems)))
        if seed is not None:
            run = seed_(seed)(run)
        run()
        if problems:
            findings.failures[label] = problems
    return findings


def _checker(
    label: str, scene: FuzzScene, findings: Findings, problems: list[str]
) -> Callable[[Any], None]:
    headers = {"Authorization": f"Bearer {scene.token}"}

    def check(case: Any) -> None:
        response = case.call(headers=headers)
        findings.requests[label] += 1
        findings.statuses[response.status_code] += 1
        try:
            case.validate_response(response, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # each failed check is kept, not raised
            problem = f"{response.status_code}: {_titles(exc)}"
            if len(problems) < 5 and not any(p.startswith(problem) for p in problems):
                problems.append(f"{problem}\n    {case.as_curl_command(headers=headers)}")

    return check


def _titles(exc: BaseException) -> str:
    """What failed, one phrase per failed check."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
    return "; ".join(
        f"{getattr(p, 'title', type(p).__name__)} ({str(getattr(p, 'message', p)).strip()[:300]})"
        for p in parts
    )


@contextmanager
def fuzz_target(root: Path) -> Iterator[tuple[FastAPI, FuzzScene]]:
    """A scene under `root` and a fresh app on its database, for `fuzz`."""
    scene = asyncio.run(build_scene(root))
    yield create_app(scene.settings), scene


def main(argv: list[str] | None = None) -> int:
    """``scripts/fuzz-api --examples N``: fuzz every operation, print the findings."""
    parser = argparse.ArgumentParser(prog="scripts/fuzz-api", description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="requests per operation")
    parser.add_argument("--seed", type=int, default=None, help="random, not derandomized")
    args = parser.parse_args(argv)
    started = time.monotonic()
    # In RAM where there is some: the server fsyncs every commit (tests/conftest.py).
    ram = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
    with (
        tempfile.TemporaryDirectory(prefix="parley-fuzz-", dir=ram) as tmp,
        fuzz_target(Path(tmp)) as (app, scene),
    ):
        findings = fuzz(app, scene, examples=args.examples, seed=args.seed)
    print(findings.summary())
    print(f"{args.examples} examples per operation in {time.monotonic() - started:.0f} s")
    return 1 if findings.failures else 0


if __name__ == "__main__":
    sys.exit(main())

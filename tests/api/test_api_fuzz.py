"""schemathesis over the OpenAPI description, in-process, on a real SQLite database and
as an authenticated mediator (`tests/support/api_fuzz.py`): no request, valid or not, gets
a 5xx, a status the description does not list, or a body that is not the schema's.

The budget is small (`EXAMPLES` per operation, derandomized, so every run sends the
same requests); ``scripts/fuzz-api --examples N`` runs the same with a larger one."""

from __future__ import annotations

from pathlib import Path

from tests.support.api_fuzz import fuzz, fuzz_target

EXAMPLES = 12


def test_no_generated_request_gets_a_5xx_or_an_answer_off_the_description(
    tmp_path: Path,
) -> None:
    with fuzz_target(tmp_path) as (app, scene):
        findings = fuzz(app, scene, examples=EXAMPLES)

    assert not findings.failures, findings.summary()
    assert len(findings.requests) >= 30  # every operation was tried
    assert sum(n for status, n in findings.statuses.items() if status < 300) > 20

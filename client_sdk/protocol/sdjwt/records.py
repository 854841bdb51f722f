"""The dossier's record format, its limits, and the selection specs ``--records`` and
``--fields`` (issue 8).

A dossier is a JSON list of records; a record is an object whose field
values are a scalar (string, number, boolean, null), a flat object of
scalars, or a list of scalars. That depth is what the format supports:
each field is disclosed whole, so deeper structure would only be a
nested record no one could disclose selectively. Field names are
non-empty, at most 128 characters, not SD-JWT's reserved ``_sd``,
``_sd_alg`` or ``...`` (at any depth, so no SD-JWT processor mistakes
data for digests), and hold no comma or surrounding whitespace, so that
``--fields`` can name every one of them. JWT registered claim names
(``iss``, ``exp``...) are fine as field names: fields live inside records,
never at the payload's top level, where they could collide.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from client_sdk.protocol.encoding import loads_strict
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.models import JSON_SAFE_INT
from client_sdk.protocol.sdjwt.disclosure import RESERVED_NAMES
from client_sdk.protocol.sdjwt.jws import dumps_compact

MAX_NAME_LEN = 128
_SPEC_TOKEN = re.compile(r"([0-9]+)(?:-([0-9]+))?")


@dataclass(frozen=True, slots=True)
class DossierLimits:
    """What one dossier may hold; the CLI's configured maximums."""

    max_records: int = 10_000
    max_fields: int = 64
    max_decoys: int = 10_000
    max_bytes: int = 8 * 1024 * 1024
    """The records' size as compact JSON."""


DEFAULT_LIMITS = DossierLimits()


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"{where}: a field name is a non-empty string")
    if name in RESERVED_NAMES:
        raise ProtocolError(f"{where}: the field name {name!r} is reserved by SD-JWT")
    if len(name) > MAX_NAME_LEN:
        raise ProtocolError(f"{where}: field name longer than {MAX_NAME_LEN} characters")
    if "," in name or name != name.strip() or not name.isprintable():
        raise ProtocolError(
            f"{where}: the field name {name!r} has a comma, surrounding whitespace or "
            "a control character"
        )
    return name


def _check_scalar(value: object, where: str) -> None:
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if abs(value) > JSON_SAFE_INT:
            raise ProtocolError(f"{where}: integer outside the range JSON numbers keep exactly")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ProtocolError(f"{where}: a number must be finite")
        return
    raise ProtocolError(f"{where}: values nest at most one level (an object or a list of scalars)")


def check_field_value(value: object, where: str) -> None:
    """Raise `ProtocolError` unless `value` is a scalar, a flat object or a flat list."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _check_name(key, where)
            _check_scalar(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for position, inner in enumerate(value):
            _check_scalar(inner, f"{where}[{position}]")
    else:
        _check_scalar(value, where)


def check_records(records: object, limits: DossierLimits = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """Check a parsed record file; return it as a list of records or raise `ProtocolError`."""
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProtocolError("a dossier is a JSON list of objects (records)")
    if not records:
        raise ProtocolError("a dossier has at least one record")
    if len(records) > limits.max_records:
        raise ProtocolError(f"a dossier has at most {limits.max_records} records")
    for number, record in enumerate(records, start=1):
        if len(record) > limits.max_fields:
            raise ProtocolError(f"record {number}: more than {limits.max_fields} fields")
        for name, value in record.items():
            _check_name(name, f"record {number}")
            check_field_value(value, f"record {number}.{name}")
    if len(dumps_compact(records)) > limits.max_bytes:
        raise ProtocolError(f"the records are larger than {limits.max_bytes} bytes")
    return records


def load_records(data: bytes, limits: DossierLimits = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """Parse and check a record file's bytes: size first, then strict JSON (a field
    named twice in one record is an error, not a silent overwrite), then the format."""
    if len(data) > limits.max_bytes:
        raise ProtocolError(f"the record file is larger than {limits.max_bytes} bytes")
    try:
        records = loads_strict(data)
    except ProtocolError as exc:
        raise ProtocolError(f"the record file is not JSON: {exc}") from exc
    return check_records(records, limits)


def parse_records_spec(spec: str, count: int) -> list[int]:
    """Parse ``"1-50,77"`` into sorted 1-based record numbers, each at most `count`.

    Overlaps merge. Raises `ProtocolError` naming the bad part.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ProtocolError("--records is empty: give numbers and ranges like 1-50,77")
    if len(spec) > 10_000:
        raise ProtocolError("--records is too long")
    chosen: set[int] = set()
    for token in spec.split(","):
        token = token.strip()
        match = _SPEC_TOKEN.fullmatch(token)
        if match is None:
            raise ProtocolError(f"--records: {token!r} is not a number or a range like 1-50")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if first < 1:
            raise ProtocolError(f"--records: {token!r}: record numbers start at 1")
        if last < first:
            raise ProtocolError(f"--records: {token!r}: a range runs from low to high")
        if last > count:
            raise ProtocolError(
                f"--records: {token!r}: the dossier has {count} record{'s' * (count != 1)}"
            )
        chosen.update(range(first, last + 1))
    return sorted(chosen)


def parse_fields_spec(spec: str) -> list[str]:
    """Parse ``"name,service_number"`` into field names, in order, without repeats."""
    if not isinstance(spec, str) or not spec.strip():
        raise ProtocolError("--fields is empty: give field names like name,service_number")
    names: list[str] = []
    for token in spec.split(","):
        name = token.strip()
        if not name:
            raise ProtocolError("--fields: an empty field name")
        if name not in names:
            names.append(name)
    return names


def check_selection(
    records: Sequence[int], fields: Sequence[str], available: Sequence[Sequence[str]]
) -> None:
    """Refuse a record that does not exist or a field that none of the chosen records has.

    `available[i]` lists the fields of record ``i + 1``.
    """
    if not records:
        raise ProtocolError("no record chosen")
    for number in records:
        if not 1 <= number <= len(available):
            raise ProtocolError(f"record {number} does not exist in this dossier")
    present = {name for number in records for name in available[number - 1]}
    missing = [name for name in fields if name not in present]
    if missing:
        raise ProtocolError(f"no chosen record has the field {', '.join(map(repr, missing))}")

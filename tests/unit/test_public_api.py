"""The public names of the SDK, pinned (as httpx pins its own), each with a docstring.

A name added to or dropped from an `__all__` must be added to or dropped from
these lists in the same change, on purpose.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from types import ModuleType

import pytest

PUBLIC: dict[str, list[str]] = {
    "client_sdk": [
        "APIError",
        "Acknowledgement",
        "AuditFailure",
        "AuthenticationError",
        "ClientClosedError",
        "ConflictError",
        "InvalidRequestError",
        "Keystore",
        "KeystoreError",
        "Member",
        "Message",
        "NotFoundError",
        "ParleyClient",
        "ParleyError",
        "PermissionDeniedError",
        "ProtocolError",
        "RateLimitedError",
        "Receipt",
        "RevokedDeviceError",
        "Room",
        "TooLargeError",
        "TransportError",
        "UntrustedKeyError",
        "VerificationError",
        "WitnessError",
    ],
    "client_sdk.client": [
        "DAY_MS",
        "DEFAULT_KEY_LIFETIME_MS",
        "RETIRED_KEY_GRACE_MS",
        "ROTATE_AFTER_MS",
        "Acknowledgement",
        "AgreementSignatureView",
        "AgreementView",
        "ClientState",
        "ContactFingerprint",
        "Member",
        "MemberTrust",
        "Message",
        "OfferAct",
        "OfferEvent",
        "OfferRound",
        "ParleyClient",
        "PendingLink",
        "Person",
        "Receipt",
        "RekeyNotice",
        "Relay",
        "RequiredSignerView",
        "Room",
        "RoomChange",
        "RoomStateView",
        "RoundSide",
        "Settlement",
        "Trust",
    ],
    "client_sdk.audit": [
        "PARALLEL_THRESHOLD",
        "AgreementCheck",
        "AuditBundle",
        "AuditFailure",
        "AuditReport",
        "KnownCheckpoint",
        "LogSummary",
        "ProgressSink",
        "TiledBundle",
        "WitnessedCheckpoint",
        "existing_witness",
        "export_log",
        "export_tiled",
        "fetch_checkpoint",
        "keystore_witness",
        "parse_bundle",
        "read_bundle",
        "readable_logs",
        "register_witness",
        "verify_agreement",
        "verify_bundle",
        "verify_log",
        "witness_once",
        "write_bundle",
    ],
    "client_sdk.keystore": [
        "DEFAULT_SCRYPT_N",
        "KEYSTORE_FILENAME",
        "KEYSTORE_VERSION",
        "LOCK_FILENAME",
        "CheckpointRecord",
        "EncryptionKeyRecord",
        "Keystore",
        "KeystoreError",
        "KeystoreState",
        "PendingUpload",
        "Pin",
        "PinResult",
        "RosterHead",
        "UntrustedKeyError",
        "default_home",
        "passphrase_from_env_or_prompt",
        "server_urls",
    ],
    "client_sdk.protocol.errors": [
        "SIZE_CONTENT_TYPE",
        "APIError",
        "AlteredError",
        "AuditFailure",
        "AuthenticationError",
        "ClientClosedError",
        "ConflictError",
        "DroppedEventError",
        "ForkedError",
        "InvalidRequestError",
        "KeySubstitutedError",
        "KeystoreError",
        "MemberAddedError",
        "NotFoundError",
        "NotPermitted",
        "ParleyError",
        "PermissionDeniedError",
        "ProtocolError",
        "RateLimitedError",
        "ReorderedError",
        "ReplayedError",
        "RevokedDeviceError",
        "RevokedServedError",
        "RolledBackError",
        "ServerMisbehaved",
        "StaleRosterError",
        "TooLargeError",
        "TransportError",
        "UntrustedKeyError",
        "UnwitnessedError",
        "VerificationError",
        "WithheldError",
        "WitnessConflictError",
        "WitnessError",
        "WitnessProofError",
        "WitnessRequestError",
        "WitnessSignatureError",
        "WitnessStateError",
        "WitnessUnknownLogError",
        "api_error",
    ],
}


def _sort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def _attribute_doc(module_name: str, name: str) -> str | None:
    """The string literal right under ``name = ...`` where `name` is assigned, following
    ``from X import name`` to the module that assigns it."""
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    body = tree.body
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if any(alias.name == name and alias.asname is None for alias in node.names):
                return _attribute_doc(node.module, name)
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                return after.value.value
            return None
    return None


def _doc(module: ModuleType, name: str) -> str | None:
    obj = getattr(module, name)
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        return doc if isinstance(doc, str) else None
    if inspect.isfunction(obj):
        return obj.__doc__
    return _attribute_doc(module.__name__, name)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_pinned_and_sorted(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == PUBLIC[module_name]
    assert module.__all__ == sorted(module.__all__, key=_sort_key)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_every_exported_name_exists_and_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    undocumented = [name for name in module.__all__ if not (_doc(module, name) or "").strip()]
    assert undocumented == []

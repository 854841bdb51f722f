"""Running an auditor's witness against a Parley server (`parley audit witness`).

The witness key is a dedicated Ed25519 key in the auditor's keystore
(`KeystoreState.witness_key`, its 32-byte seed), named ``witness.ACCOUNT_ID``,
and registered with the server once. Each round fetches the log's newest
checkpoint and a consistency proof from the size the witness cosigned last,
runs the ``add-checkpoint`` request through `client_sdk.audit.witness.Witness`, and
posts the cosignature, which the server then serves with the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.audit.witness import WITNESS_STATE_FILENAME, AddCheckpointRequest, Witness
from client_sdk.client import ParleyClient
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.errors import (
    ConflictError,
    NotFoundError,
    ProtocolError,
    VerificationError,
    WitnessConflictError,
    WitnessRequestError,
)
from client_sdk.protocol.note import verify_checkpoint, verify_cosignature
from client_sdk.protocol.wire.logs import ConsistencyOut, WitnessOut

_STALE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    """A checkpoint the witness cosigned and the server accepted the cosignature of."""

    log_id: str
    origin: str
    size: int
    root: bytes
    cosignature: str
    timestamp: int


def keystore_witness(keystore: Keystore) -> Witness:
    """This profile's witness: its key (made and saved on first use) and state file."""
    witness = existing_witness(keystore)
    if witness is not None:
        return witness
    # Another process may have made one meanwhile: the first one stored stays.
    keystore.set_witness_key(Ed25519PrivateKey.generate().private_bytes_raw())
    witness = existing_witness(keystore)
    assert witness is not None
    return witness


def existing_witness(keystore: Keystore) -> Witness | None:
    """This profile's witness, or None if it never ran one."""
    seed = keystore.witness_key()
    if seed is None:
        return None
    try:
        key = Ed25519PrivateKey.from_private_bytes(seed)
    except ValueError as exc:
        raise ProtocolError("the keystore's witness key is damaged") from exc
    name = f"witness.{keystore.state.account_id}"
    return Witness(name, key, keystore.home / WITNESS_STATE_FILENAME)


async def register_witness(client: ParleyClient, witness: Witness) -> None:
    """Register the witness key with the server (auditors only; repeating is harmless)."""
    await client.http.call(WitnessOut, "POST", "/v1/witnesses", json={"vkey": witness.vkey})


async def fetch_checkpoint(client: ParleyClient, log_id: str, size: int | None = None) -> str:
    """The log's newest (or `size`'s) signed checkpoint note, with its cosignature lines."""
    params = None if size is None else {"size": size}
    return await client.http.text(f"/v1/logs/{log_id}/checkpoint", params=params)


async def witness_once(
    client: ParleyClient, witness: Witness, log_id: str
) -> WitnessedCheckpoint | None:
    """Cosign the log's newest checkpoint if it is new to the witness; None if it is not.

    Raises a `client_sdk.protocol.errors.WitnessError` when the witness refuses (a
    forked, rewritten or rolled-back log) and `VerificationError` when the
    log's key changed.
    """
    identity = await client.logs.identity(log_id)
    origin = identity.origin
    witness.follow(origin, identity.key.to_text())
    try:
        note = await fetch_checkpoint(client, log_id)
    except NotFoundError:
        return None  # an empty log: nothing to cosign yet
    for _ in range(_STALE_RETRIES):
        followed = witness.latest(origin)
        assert followed is not None
        try:
            checkpoint = verify_checkpoint(note, origin, identity.key)
        except VerificationError as exc:
            raise VerificationError(f"log {log_id}: checkpoint refused: {exc}") from exc
        if (
            checkpoint.size == followed.size
            and checkpoint.root_hash == followed.root
            and _cosigned_by(note, witness)
        ):
            return None
        proof: list[bytes] = []
        if 0 < followed.size < checkpoint.size:
            proof = await _consistency(client, log_id, followed.size, checkpoint.size)
        request = AddCheckpointRequest(followed.size, tuple(proof), note)
        try:
            line = witness.add_checkpoint(request)
        except WitnessConflictError:
            continue  # another run of this witness moved on meanwhile: retry from its size
        except WitnessRequestError as exc:
            if checkpoint.size < followed.size:
                raise WitnessRequestError(
                    f"{exc}: the server's newest checkpoint is older than one this witness "
                    "cosigned, so the log was rolled back"
                ) from exc
            raise
        timestamp = verify_cosignature(checkpoint.to_text(), line, witness.verifier_key)
        await _submit(client, log_id, checkpoint.size, line)
        return WitnessedCheckpoint(
            log_id, origin, checkpoint.size, checkpoint.root_hash, line, timestamp
        )
    latest = witness.latest(origin)
    raise WitnessConflictError(
        f"log {log_id}: the witness state keeps changing under this run",
        size=0 if latest is None else latest.size,
    )


async def _submit(client: ParleyClient, log_id: str, size: int, line: str) -> None:
    try:
        await client.http.request(
            "POST", f"/v1/logs/{log_id}/cosignatures", json={"size": size, "cosignature": line}
        )
    except ConflictError:
        pass  # this witness cosigned this size before (a run that stopped before posting)


def _cosigned_by(note: str, witness: Witness) -> bool:
    """Whether the note already carries a valid cosignature by this witness."""
    text, _, block = note.partition("\n\n")
    for line in block.splitlines():
        if line.startswith(f"\u2014 {witness.name} "):
            try:
                verify_cosignature(text + "\n", line, witness.verifier_key)
            except VerificationError:
                continue
            return True
    return False


async def _consistency(client: ParleyClient, log_id: str, size1: int, size2: int) -> list[bytes]:
    answer = await client.http.call(
        ConsistencyOut,
        "GET",
        f"/v1/logs/{log_id}/proof/consistency",
        params={"size1": size1, "size2": size2},
    )
    return [b64d(h) for h in answer.proof]

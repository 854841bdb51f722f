"""Pending document uploads in the keystore (docs/design.md §7): kept sealed, read back
by another process, and removed without touching anything else."""

from __future__ import annotations

from pathlib import Path

from client_sdk.keystore import KEYSTORE_FILENAME, Keystore, PendingUpload, rules
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import new_content_key
from tests.unit.keystores import PASSPHRASE, make_keystore, make_state


def pending(upload_id: str = "up-1") -> PendingUpload:
    return PendingUpload(
        upload_id=upload_id,
        room_id="room-1",
        channel="plenary",
        path="/tmp/terms.pdf",  # noqa: S108 (a name, never opened)
        size=5000,
        mtime_us=1_700_000_000_000_000,
        file_id="f1",
        message_id="m1",
        content_key=new_content_key(),
        chunk_size=1024,
        name="terms.pdf",
        media_type="application/pdf",
        created_at=1,
    )


def test_a_pending_upload_survives_a_reopen_and_its_key_is_not_in_the_clear(
    tmp_path: Path,
) -> None:
    keystore = make_keystore(tmp_path)
    record = pending()

    keystore.update(lambda s: rules.add_pending_upload(s, record))

    assert Keystore.open(tmp_path, PASSPHRASE).state.pending_uploads == {"up-1": record}
    stored = (tmp_path / KEYSTORE_FILENAME).read_bytes()
    assert record.content_key not in stored
    assert b64e(record.content_key).encode() not in stored


def test_adding_the_same_record_or_dropping_an_unknown_one_changes_nothing() -> None:
    state = rules.add_pending_upload(make_state(), pending())

    assert rules.add_pending_upload(state, state.pending_uploads["up-1"]) is state
    assert rules.drop_pending_upload(state, "unknown") is state
    assert rules.drop_pending_upload(state, "up-1").pending_uploads == {}
    assert rules.drop_pending_upload(state, "up-1").pins == state.pins

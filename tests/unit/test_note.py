"""C2SP signed notes, checkpoints and cosignatures: vectors, round trips and rejections."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    Checkpoint,
    VerifierKey,
    cosign,
    format_signer_key,
    format_verifier_key,
    key_hash,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    verify_checkpoint,
    verify_cosignature,
)

EM = "\u2014"
ORIGIN = "parley.example/room/1"
ROOT = hashlib.sha256(b"root").digest()
TIME = 1_700_000_000

# Published vectors, each checked byte for byte.

# c2sp.org/signed-note, the example of its "Verifier keys" section.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    f"{EM} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# golang.org/x/mod/sumdb/note, the package documentation and its tests.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    f"{EM} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    f"{EM} EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# A public checkpoint of the transparency.dev staging CT log with its witness
# cosignatures; the log key (type 0x01) and one witness key (type 0x04) are published.
CT_ORIGIN = "arche2025h1.staging.ct.transparency.dev"
CT_LOG_VKEY = f"{CT_ORIGIN}+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
CT_WITNESS_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
CT_BODY = f"{CT_ORIGIN}\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
CT_WITNESS_LINE = (
    f"{EM} remora.n621.de "
    "2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n"
)
# An RFC 6962 tree head signature (type 0x05), unknown here and so ignored.
CT_RFC6962_LINE = (
    f"{EM} {CT_ORIGIN} "
    "zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJX"
    "Fbon5Ch9MNL5zRNZ55lvGt0=\n"
)
CT_LOG_LINE = (
    f"{EM} {CT_ORIGIN} "
    "ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
)
# A cosignature by a witness whose key these tests do not know.
CT_OTHER_WITNESS_LINE = (
    f"{EM} transparency.dev/DEV:witness-little-garden "
    "2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY09"
    "6st5BQ==\n"
)
CT_NOTE = CT_BODY + "\n" + CT_RFC6962_LINE + CT_LOG_LINE + CT_OTHER_WITNESS_LINE + CT_WITNESS_LINE


def _private_key(seed_byte: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32)


def _verifier(
    name: str, private_key: Ed25519PrivateKey, sig_type: int = SIG_ED25519
) -> VerifierKey:
    return VerifierKey(name, private_key.public_key().public_bytes_raw(), sig_type)


LOG_KEY = _private_key(1)
LOG_VKEY = _verifier(ORIGIN, LOG_KEY)
WITNESS_KEY = _private_key(2)
WITNESS_VKEY = _verifier("witness.example/w1", WITNESS_KEY, SIG_COSIGNATURE_V1)


def _checkpoint(*, size: int = 42, extensions: tuple[str, ...] = ()) -> Checkpoint:
    return Checkpoint(ORIGIN, size, ROOT, extensions)


def _signed_checkpoint(*, size: int = 42) -> str:
    return sign_note(_checkpoint(size=size).to_text(), ORIGIN, LOG_KEY)


def _signature_value(line: str) -> bytes:
    return base64.b64decode(line.rstrip("\n").split(" ")[2])


# Keys.


def test_key_hash_is_the_first_four_bytes_of_sha256_over_name_type_and_key() -> None:
    public = bytes(range(32))
    expected = hashlib.sha256(b"name\n\x01" + public).digest()[:4]
    assert key_hash("name", public) == expected


def test_key_hash_depends_on_the_signature_type() -> None:
    public = bytes(range(32))
    assert key_hash("name", public, SIG_ED25519) != key_hash("name", public, SIG_COSIGNATURE_V1)


def test_verifier_key_string_round_trips() -> None:
    text = format_verifier_key("log.example/a", bytes(range(32)))
    assert parse_verifier_key(text).to_text() == text


def test_cosigner_verifier_key_string_keeps_type_0x04() -> None:
    text = WITNESS_VKEY.to_text()
    assert parse_verifier_key(text) == WITNESS_VKEY


def test_signer_key_string_round_trips() -> None:
    text = format_signer_key("log.example/a", LOG_KEY)
    parsed = parse_signer_key(text)
    assert parsed.name == "log.example/a"
    assert parsed.private_key.private_bytes_raw() == LOG_KEY.private_bytes_raw()


def test_go_signer_key_yields_the_go_verifier_key() -> None:
    signer = parse_signer_key(GO_SKEY)
    assert signer.verifier_key().to_text() == GO_VKEY
    assert format_signer_key(signer.name, signer.private_key) == GO_SKEY


def test_verifier_key_with_plus_in_its_base64_parses() -> None:
    # From transparency-dev/formats' tests: the key material itself contains '+'.
    key = parse_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
    assert (key.name, key.sig_type, key.key_hash.hex()) == ("TEST", SIG_ED25519, "7997405c")


@pytest.mark.parametrize(
    "vkey",
    [
        pytest.param(
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="wrong-hash"
        ),
        pytest.param(
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="upper-hex"
        ),
        pytest.param("example.com/foo+530d903a", id="missing-key"),
        pytest.param("example.com/foo+530d903a+!!!!", id="bad-base64"),
        pytest.param(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
            id="unpadded-short",
        ),
        pytest.param("example.com/foo+530d903a+AwEB", id="unknown-type"),
        pytest.param(
            "example.com/foo+530d903a+" + base64.b64encode(b"\x01" + bytes(31)).decode(),
            id="short-key",
        ),
        pytest.param("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="empty-name"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(ProtocolError):
        parse_verifier_key(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        pytest.param(GO_SKEY.replace("c74f20a3", "c74f20a4"), id="wrong-hash"),
        pytest.param(GO_SKEY.removeprefix("PRIVATE+KEY+"), id="no-prefix"),
        pytest.param(GO_SKEY[:-4], id="truncated"),
    ],
)
def test_malformed_signer_key_is_rejected(skey: str) -> None:
    with pytest.raises(ProtocolError):
        parse_signer_key(skey)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nbsp\u00a0here"])
def test_invalid_key_name_is_refused(name: str) -> None:
    with pytest.raises(ProtocolError, match="invalid key name"):
        sign_note("text\n", name, LOG_KEY)


# Published vectors.


def test_signed_note_spec_example_opens() -> None:
    assert open_note(SPEC_NOTE, [parse_verifier_key(SPEC_VKEY)]) == (
        "This is an example message.\n",
        ["example.com/foo"],
    )


def test_signing_reproduces_the_go_note_example() -> None:
    signer = parse_signer_key(GO_SKEY)
    assert sign_note(GO_TEXT, signer.name, signer.private_key) == GO_TEXT + "\n" + GO_PETER_SIG


def test_go_note_signed_by_two_keys_opens_with_both() -> None:
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    keys = [parse_verifier_key(GO_VKEY), parse_verifier_key(GO_ENOCH_VKEY)]
    assert open_note(note, keys) == (GO_TEXT, ["PeterNeumann", "EnochRoot"])


def test_real_checkpoint_verifies_with_its_log_key() -> None:
    checkpoint = verify_checkpoint(CT_NOTE, CT_ORIGIN, parse_verifier_key(CT_LOG_VKEY))
    assert checkpoint.size == 1432088532
    assert checkpoint.to_text() == CT_BODY


def test_real_checkpoint_with_altered_size_is_rejected() -> None:
    note = CT_NOTE.replace("\n1432088532\n", "\n1432088533\n")
    with pytest.raises(VerificationError, match="bad signature"):
        verify_checkpoint(note, CT_ORIGIN, parse_verifier_key(CT_LOG_VKEY))


def test_real_witness_cosignature_verifies() -> None:
    witness = parse_verifier_key(CT_WITNESS_VKEY)
    assert witness.sig_type == SIG_COSIGNATURE_V1
    assert verify_cosignature(CT_BODY, CT_WITNESS_LINE, witness) == 1779573024


def test_real_checkpoint_opens_with_log_and_witness_keys() -> None:
    keys = [parse_verifier_key(CT_LOG_VKEY), parse_verifier_key(CT_WITNESS_VKEY)]
    assert open_note(CT_NOTE, keys) == (CT_BODY, [CT_ORIGIN, "remora.n621.de"])


# Signed notes.


def test_signed_note_opens_with_its_key() -> None:
    note = sign_note("hello\n\nworld\n", "signer.example", LOG_KEY)
    assert open_note(note, [_verifier("signer.example", LOG_KEY)]) == (
        "hello\n\nworld\n",
        ["signer.example"],
    )


def test_signature_line_starts_with_em_dash_and_space() -> None:
    note = sign_note("hello\n", "signer.example", LOG_KEY)
    assert note.startswith("hello\n\n\u2014 signer.example ")


def test_note_with_altered_text_is_rejected() -> None:
    note = sign_note("pay 10\n", "signer.example", LOG_KEY).replace("10", "99")
    with pytest.raises(VerificationError, match=r"bad signature by signer\.example"):
        open_note(note, [_verifier("signer.example", LOG_KEY)])


def test_note_with_altered_signature_is_rejected() -> None:
    note = sign_note("hello\n", "signer.example", LOG_KEY)
    text, line = note.split("\n\n")
    value = bytearray(_signature_value(line))
    value[10] ^= 1
    forged = f"{text}\n\n{EM} signer.example {base64.b64encode(bytes(value)).decode()}\n"
    with pytest.raises(VerificationError, match="bad signature"):
        open_note(forged, [_verifier("signer.example", LOG_KEY)])


def test_signatures_by_unknown_keys_are_ignored() -> None:
    note = sign_note("hello\n", "a.example", LOG_KEY)
    other = sign_note("hello\n", "b.example", WITNESS_KEY)
    combined = note + other.split("\n\n")[1]
    assert open_note(combined, [_verifier("b.example", WITNESS_KEY)]) == (
        "hello\n",
        ["b.example"],
    )


def test_unknown_key_sharing_a_known_name_is_ignored() -> None:
    impostor = sign_note("hello\n", "a.example", WITNESS_KEY)
    genuine = sign_note("hello\n", "a.example", LOG_KEY)
    combined = impostor + genuine.split("\n\n")[1]
    assert open_note(combined, [_verifier("a.example", LOG_KEY)])[1] == ["a.example"]


def test_note_signed_only_by_unknown_keys_is_rejected() -> None:
    note = sign_note("hello\n", "a.example", LOG_KEY)
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_note(note, [_verifier("b.example", WITNESS_KEY)])


def test_note_opened_with_no_keys_is_rejected() -> None:
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_note(sign_note("hello\n", "a.example", LOG_KEY), [])


def test_bad_signature_by_a_known_key_rejects_a_note_another_key_signed() -> None:
    good = sign_note("hello\n", "a.example", LOG_KEY)
    bad = sign_note("other\n", "b.example", WITNESS_KEY).split("\n\n")[1]
    keys = [_verifier("a.example", LOG_KEY), _verifier("b.example", WITNESS_KEY)]
    with pytest.raises(VerificationError, match=r"bad signature by b\.example"):
        open_note(good + bad, keys)


def test_text_without_final_newline_is_not_signed() -> None:
    with pytest.raises(ProtocolError, match="newline"):
        sign_note("hello", "a.example", LOG_KEY)


def test_text_with_control_character_is_not_signed() -> None:
    with pytest.raises(ProtocolError, match="control"):
        sign_note("bell\x07\n", "a.example", LOG_KEY)


_GOOD = sign_note("hello\n", "a.example", LOG_KEY)
_TEXT, _LINE = _GOOD.split("\n\n")  # "hello" and the signature line with its newline
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(_GOOD.replace("\n\n", "\n"), id="missing-blank-line"),
        pytest.param(_GOOD[:-1], id="no-final-newline"),
        pytest.param(_GOOD + "trailing\n", id="trailing-data"),
        pytest.param(_GOOD + "\n", id="trailing-blank-line"),
        pytest.param(_TEXT + "\n\n", id="no-signature-lines"),
        pytest.param(_GOOD.replace(EM, "--"), id="no-em-dash"),
        pytest.param(_GOOD.replace(f"{EM} a.example ", f"{EM} a.example  "), id="double-space"),
        pytest.param(_GOOD[:-3] + "!=\n", id="bad-base64"),
        pytest.param(_GOOD[:-2] + "\n", id="missing-padding"),
        pytest.param(_TEXT + f"\n\n{EM} a.example AAAA\n", id="signature-too-short"),
        pytest.param("he\rllo\n" + _GOOD[6:], id="control-character"),
        pytest.param(_GOOD + _LINE * 100, id="too-many-signatures"),
    ],
)
def test_malformed_note_is_rejected(note: str) -> None:
    with pytest.raises(VerificationError):
        open_note(note, [_verifier("a.example", LOG_KEY)])


def test_non_canonical_base64_signature_is_rejected() -> None:
    # 68 bytes leave the last base64 digit two unused bits; setting one spells
    # the same bytes differently, which a strict decoder refuses.
    encoded = _LINE.rstrip("\n").split(" ")[2]
    digit = _B64_ALPHABET.index(encoded[-2])
    tweaked = encoded[:-2] + _B64_ALPHABET[digit | 1] + "="
    assert base64.b64decode(tweaked) == base64.b64decode(encoded)
    with pytest.raises(VerificationError, match="non-canonical"):
        open_note(f"{_TEXT}\n\n{EM} a.example {tweaked}\n", [_verifier("a.example", LOG_KEY)])


# Checkpoints.


def test_checkpoint_text_has_origin_size_and_base64_root() -> None:
    expected = f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"
    assert _checkpoint().to_text() == expected


def test_checkpoint_with_extension_lines_round_trips() -> None:
    checkpoint = _checkpoint(extensions=("ext one", "ext two"))
    assert Checkpoint.parse(checkpoint.to_text()) == checkpoint


def test_checkpoint_of_the_empty_tree_round_trips() -> None:
    checkpoint = _checkpoint(size=0)
    assert Checkpoint.parse(checkpoint.to_text()) == checkpoint


def test_signed_checkpoint_verifies() -> None:
    assert verify_checkpoint(_signed_checkpoint(), ORIGIN, LOG_VKEY) == _checkpoint()


def test_checkpoint_for_another_origin_is_rejected() -> None:
    with pytest.raises(VerificationError, match=r"not 'parley\.example/room/2'"):
        verify_checkpoint(_signed_checkpoint(), "parley.example/room/2", LOG_VKEY)


def test_checkpoint_signed_by_another_key_is_rejected() -> None:
    note = sign_note(_checkpoint().to_text(), ORIGIN, WITNESS_KEY)
    with pytest.raises(VerificationError, match="no signature by a known key"):
        verify_checkpoint(note, ORIGIN, LOG_VKEY)


def test_checkpoint_with_altered_size_is_rejected() -> None:
    note = _signed_checkpoint().replace("\n42\n", "\n43\n")
    with pytest.raises(VerificationError, match="bad signature"):
        verify_checkpoint(note, ORIGIN, LOG_VKEY)


def test_signed_note_that_is_not_a_checkpoint_is_rejected() -> None:
    note = sign_note(f"{ORIGIN}\n42\n", ORIGIN, LOG_KEY)
    with pytest.raises(VerificationError, match="malformed checkpoint"):
        verify_checkpoint(note, ORIGIN, LOG_VKEY)


def test_cosigner_key_is_not_accepted_as_a_log_key() -> None:
    with pytest.raises(VerificationError, match="type 0x01"):
        verify_checkpoint(_signed_checkpoint(), ORIGIN, WITNESS_VKEY)


_ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"{ORIGIN}\n42\n{_ROOT_B64}", id="no-final-newline"),
        pytest.param(f"{ORIGIN}\n42\n", id="no-root-line"),
        pytest.param(f"\n42\n{_ROOT_B64}\n", id="empty-origin"),
        pytest.param(f"{ORIGIN}\n042\n{_ROOT_B64}\n", id="leading-zero"),
        pytest.param(f"{ORIGIN}\n-1\n{_ROOT_B64}\n", id="negative-size"),
        pytest.param(f"{ORIGIN}\n\u0664\u0662\n{_ROOT_B64}\n", id="non-ascii-digits"),
        pytest.param(f"{ORIGIN}\n{2**64}\n{_ROOT_B64}\n", id="size-over-64-bits"),
        pytest.param(f"{ORIGIN}\n42\n{_ROOT_B64[:-4]}\n", id="short-root"),
        pytest.param(f"{ORIGIN}\n42\n{_ROOT_B64}\n\n", id="empty-extension-line"),
    ],
)
def test_malformed_checkpoint_text_is_rejected(text: str) -> None:
    with pytest.raises(ProtocolError):
        Checkpoint.parse(text)


# Cosignatures (type 0x04).


def test_cosignature_round_trip_returns_its_timestamp() -> None:
    body = _checkpoint().to_text()
    line = cosign(body, WITNESS_VKEY.name, WITNESS_KEY, TIME)
    assert verify_cosignature(body, line, WITNESS_VKEY) == TIME


def test_cosignature_value_is_key_hash_timestamp_and_signature() -> None:
    body = _checkpoint().to_text()
    line = cosign(body, WITNESS_VKEY.name, WITNESS_KEY, TIME)
    assert line.startswith(f"{EM} witness.example/w1 ")
    assert line.endswith("\n")
    value = _signature_value(line)
    assert value[:4] == WITNESS_VKEY.key_hash
    assert int.from_bytes(value[4:12], "big") == TIME
    message = f"cosignature/v1\ntime {TIME}\n{body}".encode()
    WITNESS_KEY.public_key().verify(value[12:], message)  # raises if the message differs


def test_cosigned_note_opens_with_log_and_witness_keys() -> None:
    body = _checkpoint().to_text()
    note = sign_note(body, ORIGIN, LOG_KEY) + cosign(body, WITNESS_VKEY.name, WITNESS_KEY, TIME)
    assert open_note(note, [LOG_VKEY, WITNESS_VKEY]) == (body, [ORIGIN, WITNESS_VKEY.name])


def test_cosignature_of_another_checkpoint_is_rejected() -> None:
    line = cosign(_checkpoint().to_text(), WITNESS_VKEY.name, WITNESS_KEY, TIME)
    with pytest.raises(VerificationError, match="bad signature"):
        verify_cosignature(_checkpoint(size=43).to_text(), line, WITNESS_VKEY)


def test_cosignature_with_altered_timestamp_is_rejected() -> None:
    body = _checkpoint().to_text()
    value = bytearray(_signature_value(cosign(body, WITNESS_VKEY.name, WITNESS_KEY, TIME)))
    value[11] ^= 1
    line = f"{EM} {WITNESS_VKEY.name} {base64.b64encode(bytes(value)).decode()}\n"
    with pytest.raises(VerificationError, match="bad signature"):
        verify_cosignature(body, line, WITNESS_VKEY)


def test_cosignature_by_another_witness_is_rejected() -> None:
    body = _checkpoint().to_text()
    line = cosign(body, WITNESS_VKEY.name, _private_key(3), TIME)
    with pytest.raises(VerificationError, match="not by cosigner"):
        verify_cosignature(body, line, WITNESS_VKEY)


def test_plain_note_signature_does_not_pass_as_cosignature() -> None:
    body = _checkpoint().to_text()
    line = sign_note(body, WITNESS_VKEY.name, WITNESS_KEY).split("\n\n")[1]
    with pytest.raises(VerificationError, match="not by cosigner"):
        verify_cosignature(body, line, WITNESS_VKEY)


def test_cosignature_does_not_pass_as_plain_signature_of_the_same_key() -> None:
    body = _checkpoint().to_text()
    note = body + "\n" + cosign(body, "w.example", WITNESS_KEY, TIME)
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_note(note, [_verifier("w.example", WITNESS_KEY)])


def test_cosignature_timestamp_out_of_range_is_refused() -> None:
    with pytest.raises(ProtocolError, match="timestamp"):
        cosign(_checkpoint().to_text(), WITNESS_VKEY.name, WITNESS_KEY, 2**63)


def test_cosigning_text_that_is_not_a_checkpoint_is_refused() -> None:
    with pytest.raises(ProtocolError):
        cosign("not a checkpoint\n", WITNESS_VKEY.name, WITNESS_KEY, TIME)


def test_cosignature_needs_a_type_0x04_key() -> None:
    body = _checkpoint().to_text()
    line = cosign(body, WITNESS_VKEY.name, WITNESS_KEY, TIME)
    with pytest.raises(VerificationError, match="type 0x04"):
        verify_cosignature(body, line, _verifier(WITNESS_VKEY.name, WITNESS_KEY))


def test_more_than_one_cosignature_line_is_rejected() -> None:
    body = _checkpoint().to_text()
    line = cosign(body, WITNESS_VKEY.name, WITNESS_KEY, TIME)
    with pytest.raises(VerificationError, match="malformed cosignature"):
        verify_cosignature(body, line + line, WITNESS_VKEY)

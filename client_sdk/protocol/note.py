"""Signed notes, checkpoints and witness cosignatures, as the C2SP specifications define them.

- c2sp.org/signed-note: a text ending in a newline, a blank line, then
  signature lines ``— <key name> base64(key hash || signature)``. The key
  hash is ``SHA-256(name || 0x0A || type || public key)[:4]``; type 0x01 is
  Ed25519 over the text. Keys travel as verifier keys
  ``name+hash+base64(type || public key)`` and signer keys
  ``PRIVATE+KEY+name+hash+base64(type || seed)``.
- c2sp.org/tlog-checkpoint: the text of a log's signed tree head, the
  lines origin, tree size, base64 root hash and optional extension lines.
- c2sp.org/tlog-cosignature, type 0x04: a witness's Ed25519 signature over
  ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint text, carried as
  ``key hash || u64 big-endian t || signature``.

Pure: text in, text out; time is a parameter. Opening and verifying return
a value or raise `VerificationError` for any defect, malformed input
included (fail closed); building notes and parsing keys raise
`ProtocolError` on input the specifications do not allow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from client_sdk.protocol.errors import ProtocolError, VerificationError

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100
MAX_TIMESTAMP = 2**63 - 1

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
_HASH_SIZE = 32
_ED25519_LEN = 32
_ED25519_SIG_LEN = 64
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_HASH_HEX = re.compile(r"[0-9a-f]{8}")


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    """Decode padded standard base64 (RFC 4648 §4), accepting only its canonical form."""
    if not _B64.fullmatch(text) or len(text) % 4 != 0:
        raise ProtocolError("not standard base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("not standard base64") from exc
    if _b64encode(data) != text:
        raise ProtocolError("non-canonical base64")
    return data


def _has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 and ch != "\n" for ch in text)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _check_name(name: str) -> None:
    # Non-empty, no Unicode space, no plus; control characters never belong in a note.
    if (
        not name
        or not _is_utf8(name)
        or any(ch.isspace() or ch == "+" or ord(ch) < 0x20 for ch in name)
    ):
        raise ProtocolError(f"invalid key name {name!r}")


def key_hash(name: str, public_key: bytes, sig_type: int = SIG_ED25519) -> bytes:
    """The 4-byte key hash: ``SHA-256(name || 0x0A || sig_type || public_key)[:4]``."""
    _check_name(name)
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A named Ed25519 public key and the signature type it checks (0x01 or 0x04)."""

    name: str
    public_key: bytes
    sig_type: int = SIG_ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.sig_type not in (SIG_ED25519, SIG_COSIGNATURE_V1):
            raise ProtocolError(f"unsupported signature type {self.sig_type:#04x}")
        if len(self.public_key) != _ED25519_LEN:
            raise ProtocolError("an Ed25519 public key is 32 bytes")

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key hash that signature lines by this key carry."""
        return key_hash(self.name, self.public_key, self.sig_type)

    def to_text(self) -> str:
        """The verifier key string ``name+hash+base64(type || public key)``."""
        return format_verifier_key(self.name, self.public_key, self.sig_type)


def format_verifier_key(name: str, public_key: bytes, sig_type: int = SIG_ED25519) -> str:
    """The verifier key string ``name+hash_hex8+base64(type || public key)``."""
    VerifierKey(name, public_key, sig_type)  # validates
    material = _b64encode(bytes([sig_type]) + public_key)
    return f"{name}+{key_hash(name, public_key, sig_type).hex()}+{material}"


def parse_verifier_key(vkey: str) -> VerifierKey:
    """Parse a verifier key string, checking its key hash; raise `ProtocolError`."""
    # Names hold no plus; base64 may, so split at the first two only.
    parts = vkey.split("+", 2)
    if len(parts) != 3 or not _KEY_HASH_HEX.fullmatch(parts[1]):
        raise ProtocolError("malformed verifier key")
    name, hash_hex, material = parts
    raw = _b64decode(material)
    if not raw:
        raise ProtocolError("malformed verifier key")
    key = VerifierKey(name, raw[1:], raw[0])
    if key.key_hash.hex() != hash_hex:
        raise ProtocolError("verifier key hash does not match its key")
    return key


@dataclass(frozen=True, slots=True)
class SignerKey:
    """A named Ed25519 private key, as a signer key string holds it."""

    name: str
    private_key: Ed25519PrivateKey

    def verifier_key(self, sig_type: int = SIG_ED25519) -> VerifierKey:
        """The matching public verifier key for `sig_type`."""
        return VerifierKey(self.name, self.private_key.public_key().public_bytes_raw(), sig_type)


def format_signer_key(name: str, private_key: Ed25519PrivateKey) -> str:
    """The signer key string ``PRIVATE+KEY+name+hash+base64(0x01 || seed)``."""
    vkey = SignerKey(name, private_key).verifier_key()
    material = _b64encode(bytes([SIG_ED25519]) + private_key.private_bytes_raw())
    return f"{_SIGNER_KEY_PREFIX}{name}+{vkey.key_hash.hex()}+{material}"


def parse_signer_key(skey: str) -> SignerKey:
    """Parse a signer key string, checking its key hash; raise `ProtocolError`."""
    if not skey.startswith(_SIGNER_KEY_PREFIX):
        raise ProtocolError("malformed signer key")
    parts = skey[len(_SIGNER_KEY_PREFIX) :].split("+", 2)
    if len(parts) != 3 or not _KEY_HASH_HEX.fullmatch(parts[1]):
        raise ProtocolError("malformed signer key")
    name, hash_hex, material = parts
    raw = _b64decode(material)
    if len(raw) != 1 + _ED25519_LEN or raw[0] != SIG_ED25519:
        raise ProtocolError("a signer key holds type 0x01 and a 32-byte Ed25519 seed")
    signer = SignerKey(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier_key().key_hash.hex() != hash_hex:
        raise ProtocolError("signer key hash does not match its key")
    return signer


def format_root(root: bytes) -> str:
    """A tree's root hash as Parley shows it everywhere (command output, JSON, errors):
    standard padded base64, as on a checkpoint's third line (c2sp.org/tlog-checkpoint),
    so a printed root can be compared with a checkpoint by eye."""
    return _b64encode(root)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head as the text of a c2sp.org/tlog-checkpoint note."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not line or _has_control(line) or "\n" in line or not _is_utf8(line):
                raise ProtocolError("checkpoint lines are non-empty single lines of text")
        if not 0 <= self.size < 2**64:
            raise ProtocolError("a checkpoint tree size is a 64-bit unsigned integer")
        if len(self.root_hash) != _HASH_SIZE:
            raise ProtocolError("a checkpoint root hash is 32 bytes")

    def to_text(self) -> str:
        """The note text: origin, size, base64 root hash and extension lines, each ending in LF."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text (without signatures); raise `ProtocolError`."""
        if not text.endswith("\n"):
            raise ProtocolError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise ProtocolError("a checkpoint has at least three lines")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise ProtocolError("a checkpoint tree size is a decimal without leading zeros")
        return cls(origin, int(size), _b64decode(root), tuple(extensions))


def _signature_line(name: str, value: bytes) -> str:
    return f"{_SIGNATURE_PREFIX}{name} {_b64encode(value)}\n"


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ProtocolError("note text must end with a newline")
    if _has_control(text) or not _is_utf8(text):
        raise ProtocolError("note text must be UTF-8 without control characters")


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign `text` with an Ed25519 note key (type 0x01); return the signed note.

    More signature lines (a witness's `cosign` output) may be appended to
    the result as they are.
    """
    _check_note_text(text)
    public_key = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(text.encode())
    return text + "\n" + _signature_line(name, key_hash(name, public_key) + signature)


@dataclass(frozen=True, slots=True)
class _Signature:
    name: str
    key_hash: bytes
    value: bytes


def _parse_signature_line(line: str) -> _Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise ProtocolError("a signature line starts with an em dash and a space")
    parts = line[len(_SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise ProtocolError("a signature line is a key name and a base64 signature")
    name, encoded = parts
    _check_name(name)
    value = _b64decode(encoded)
    if len(value) < 5:
        raise ProtocolError("a signature holds a key hash and at least one byte")
    return _Signature(name, value[:4], value[4:])


def _split_note(note: str) -> tuple[str, list[_Signature]]:
    if _has_control(note) or not _is_utf8(note):
        raise ProtocolError("a note is UTF-8 without control characters")
    blank = note.rfind("\n\n")
    if blank < 0:
        raise ProtocolError("a note has a blank line before its signatures")
    text, block = note[: blank + 1], note[blank + 2 :]
    if not block:
        raise ProtocolError("a note has at least one signature line")
    if not block.endswith("\n"):
        raise ProtocolError("a note ends with a newline-terminated signature line")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ProtocolError(f"a note has at most {MAX_SIGNATURES} signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def _verify_ed25519(public_key: bytes, signature: bytes, message: bytes, name: str) -> None:
    if len(signature) != _ED25519_SIG_LEN:
        raise VerificationError(f"signature by {name} has the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise VerificationError(f"bad signature by {name}") from exc


def _verify_cosignature_value(key: VerifierKey, text: str, value: bytes) -> int:
    # value is u64 big-endian timestamp || Ed25519 signature over the cosigned message.
    if len(value) != 8 + _ED25519_SIG_LEN:
        raise VerificationError(f"cosignature by {key.name} has the wrong length")
    timestamp = int.from_bytes(value[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise VerificationError(f"cosignature by {key.name} has an out-of-range timestamp")
    _verify_ed25519(key.public_key, value[8:], _cosigned_message(text, timestamp), key.name)
    return timestamp


def _verify_signature(key: VerifierKey, text: str, value: bytes) -> None:
    if key.sig_type == SIG_ED25519:
        _verify_ed25519(key.public_key, value, text.encode(), key.name)
    else:
        _verify_cosignature_value(key, text, value)


def open_note(note: str, verifiers: Sequence[VerifierKey]) -> tuple[str, list[str]]:
    """Verify a signed note; return its text and the names of the keys that signed it.

    Signatures by keys not in `verifiers` are ignored; any signature by a
    known key must verify, and at least one must be present. Type 0x04
    verifiers check witness cosignatures. Raises `VerificationError`.
    """
    try:
        text, signatures = _split_note(note)
    except ProtocolError as exc:
        raise VerificationError(f"malformed note: {exc}") from exc
    known: dict[tuple[str, bytes], VerifierKey] = {}
    for verifier in verifiers:
        if known.setdefault((verifier.name, verifier.key_hash), verifier) != verifier:
            raise VerificationError(f"two verifier keys share the name and hash of {verifier.name}")
    verified: list[str] = []
    for signature in signatures:
        key = known.get((signature.name, signature.key_hash))
        if key is None:
            continue
        _verify_signature(key, text, signature.value)
        if key.name not in verified:
            verified.append(key.name)
    if not verified:
        raise VerificationError("the note carries no signature by a known key")
    return text, verified


def verify_checkpoint(note: str, origin: str, log_key: VerifierKey) -> Checkpoint:
    """Open a checkpoint note signed by `log_key` for the log `origin`; raise `VerificationError`.

    Other signature lines, witness cosignatures included, are ignored here.
    """
    if log_key.sig_type != SIG_ED25519:
        raise VerificationError("a log key signs checkpoints with Ed25519 (type 0x01)")
    text, _ = open_note(note, [log_key])
    try:
        checkpoint = Checkpoint.parse(text)
    except ProtocolError as exc:
        raise VerificationError(f"malformed checkpoint: {exc}") from exc
    if checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def cosign(checkpoint_text: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """A witness's type 0x04 cosignature of checkpoint text at POSIX time `timestamp`.

    Returns the signature line, ending in a newline, to append to the note.
    """
    Checkpoint.parse(checkpoint_text)
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ProtocolError("a cosignature timestamp is between 0 and 2**63 - 1")
    public_key = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(_cosigned_message(checkpoint_text, timestamp))
    value = key_hash(name, public_key, SIG_COSIGNATURE_V1) + timestamp.to_bytes(8, "big")
    return _signature_line(name, value + signature)


def verify_cosignature(checkpoint_text: str, signature_line: str, cosigner: VerifierKey) -> int:
    """Check a `cosign` line against checkpoint text; return its timestamp.

    `cosigner` is the witness's type 0x04 key; the line may end in a
    newline. Raises `VerificationError`.
    """
    if cosigner.sig_type != SIG_COSIGNATURE_V1:
        raise VerificationError("a cosigner key has signature type 0x04")
    line = signature_line.removesuffix("\n")
    try:
        Checkpoint.parse(checkpoint_text)
        if "\n" in line:
            raise ProtocolError("one signature line expected")
        signature = _parse_signature_line(line)
    except ProtocolError as exc:
        raise VerificationError(f"malformed cosignature: {exc}") from exc
    if (signature.name, signature.key_hash) != (cosigner.name, cosigner.key_hash):
        raise VerificationError(f"the signature line is not by cosigner {cosigner.name}")
    return _verify_cosignature_value(cosigner, checkpoint_text, signature.value)

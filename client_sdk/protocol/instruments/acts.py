"""Every kind of instrument act and state, and signing, parsing and checking acts.

A new kind of act is a model in its own module, listed here once.
"""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

from client_sdk.protocol.encoding import b64d, b64e, canonical_json, loads_strict
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.instruments.agreements import (
    Agreement,
    AgreementProposeAct,
    AgreementSignAct,
)
from client_sdk.protocol.instruments.base import Act, State
from client_sdk.protocol.instruments.receipts import Acknowledged, ReceiptAct, ReceiptEvent
from client_sdk.protocol.instruments.rounds import (
    EscrowOpenAct,
    OfferCommitAct,
    OfferRevealAct,
    OfferSettleAct,
    RoundCloseAct,
    RoundOpenAct,
    RoundState,
)
from client_sdk.protocol.keys import SigLabel, SigningKey, verify_signature
from client_sdk.protocol.statements import SignedStatement

ACTS: Final[dict[str, type[Act]]] = {
    "receipt": ReceiptAct,
    "agreement-propose": AgreementProposeAct,
    "agreement-sign": AgreementSignAct,
    "round-open": RoundOpenAct,
    "offer-commit": OfferCommitAct,
    "offer-reveal": OfferRevealAct,
    "round-close": RoundCloseAct,
    "escrow-open": EscrowOpenAct,
    "offer-settle": OfferSettleAct,
}
STATES: Final[dict[str, type[State]]] = {
    "acknowledged": Acknowledged,
    "receipt-event": ReceiptEvent,
    "agreement": Agreement,
    "offer-round": RoundState,
}


def sign_act(key: SigningKey, act: Act) -> SignedStatement:
    """Sign `act` with a device key (label ``instrument``)."""
    body = act.model_dump(mode="json")
    return SignedStatement(
        body=body, signature=b64e(key.sign(SigLabel.INSTRUMENT, canonical_json(body)))
    )


def parse_act(signed: SignedStatement) -> Act:
    """The act a statement carries, parsed strictly; `ProtocolError` if it is none."""
    body = signed.body
    if body.get("type") != "instrument":
        raise ProtocolError("the statement is not an instrument act")
    name = body.get("act")
    model = ACTS.get(name) if isinstance(name, str) else None
    if model is None:
        raise ProtocolError(f"unknown instrument act {name!r}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ProtocolError(f"malformed {name} act: {where}: {error['msg']}") from exc


def verify_act(signed: SignedStatement, public_key: bytes) -> Act:
    """Parse the act and check its signature by `public_key`; `VerificationError` if
    either fails (a malformed act counts as a failed check)."""
    try:
        act = parse_act(signed)
        signature = b64d(signed.signature)
    except ProtocolError as exc:
        raise VerificationError(str(exc)) from exc
    verify_signature(public_key, SigLabel.INSTRUMENT, canonical_json(signed.body), signature)
    return act


def dump_state(state: State) -> str:
    """A state as stored (JSON)."""
    return state.model_dump_json()


def load_state(text: str) -> State:
    """A stored state, parsed by its kind; `ProtocolError` if it is not one."""
    data = loads_strict(text)
    kind = data.get("kind") if isinstance(data, dict) else None
    model = STATES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError("a stored instrument state of an unknown kind")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(f"a malformed stored {kind} state: {exc.errors()[0]['msg']}") from exc

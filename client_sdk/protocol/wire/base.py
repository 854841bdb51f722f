"""The two kinds of wire model: requests and signed things are strict, answers tolerant."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """A server answer: frozen, and tolerant of fields a newer server adds.

    Only the envelope of an answer is tolerant: whatever is signed or hashed
    inside it (statements, envelopes) keeps its strict `WireModel`, so an
    unknown field there is still an error.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

"""The exceptions shared by the protocol code, the SDK and (for parsing) the server.

ParleyError                 the one base class SDK users catch
├── ProtocolError           bytes or JSON that do not parse as the protocol says
└── VerificationError       a signature, hash, proof or policy check failed
"""

from __future__ import annotations


class ParleyError(Exception):
    """Base class of every error the Parley SDK raises."""


class ProtocolError(ParleyError):
    """Input that does not have the shape the protocol requires."""


class VerificationError(ParleyError):
    """A cryptographic or policy check failed; the message says which and why."""

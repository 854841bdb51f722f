"""The pure code the SDK and the server share, byte for byte: no I/O, no clock.

encoding (RFC 8785 canonical JSON, base64url), keys, statements, envelope (HPKE),
content, leaf, merkle (RFC 9162), note (C2SP signed notes and checkpoints),
mediation (the room's rules), fingerprint, sdjwt, excerpt; `errors` holds every
exception the SDK raises, in one tree, and `wire` the HTTP and WebSocket models.
The server may import this package and nothing else of the SDK.
"""

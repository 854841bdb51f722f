"""The HTTP and WebSocket wire models, shared by the server and the SDK.

The server builds its answers from these models and parses requests into
them; the SDK parses every answer into them at the edge with `parse_answer`
(`parse_answers` for lists), so a bad answer is one `ProtocolError`. Requests
and everything signed or hashed are `WireModel` (frozen, unknown fields are
errors); answers are `Answer` (frozen, unknown fields ignored, so a newer
server may add some).

Which model answers which route (request body in brackets)::

    GET  /healthz                                  health.HealthOut
    POST /v1/enroll/preview   [EnrollPreviewRequest]  identity.EnrollPreview
    POST /v1/enroll           [EnrollRequest]         identity.EnrollResponse
    POST /v1/auth/challenge   [ChallengeRequest]      identity.ChallengeResponse
    POST /v1/auth/token       [TokenRequest]          identity.TokenResponse
    POST /v1/auth/logout                           204, no body
    GET  /v1/accounts/me?since=                    identity.AccountOut
    GET  /v1/accounts/{id}?since=                  identity.AccountOut
    GET  /v1/accounts?role=                        list[identity.AccountSummary]
    POST /v1/enrollment-tokens [EnrollmentTokenRequest]  identity.EnrollmentTokenResponse
    POST /v1/devices/me/encryption-keys [RotateKeyRequest]  logs.LoggedOut
    POST /v1/devices/revocations [devices.RevokeDeviceRequest]  logs.LoggedOut
    POST /v1/device-links     [devices.LinkRequest]   devices.LinkOut (no credentials)
    GET  /v1/device-links                          list[devices.LinkOut] (the caller's account's)
    GET  /v1/device-links/{id}                     devices.LinkOut (with ``grant`` once approved)
    POST /v1/device-links/{id}/approve [ApproveLinkRequest]  devices.LinkOut
    POST /v1/rooms            [rooms.CreateRoomRequest]  rooms.RoomOut
    GET  /v1/rooms                                 list[rooms.RoomSummary]
    GET  /v1/rooms/{id}                            rooms.RoomOut
    POST /v1/rooms/{id}/rosters [UpdateRosterRequest]  rooms.RoomOut (with ``logged``)
    GET  /v1/rooms/{id}/rosters/{version}          rooms.RosterOut
    POST /v1/rooms/{id}/messages [envelope.Envelope]  events.SendResponse
    POST /v1/rooms/{id}/moderation [ModerateRequest]  rooms.ModerationOut
    GET  /v1/rooms/{id}/events?after=&limit=&since=   events.EventsPage
    POST /v1/rooms/{id}/uploads [documents.CreateUploadRequest]  documents.UploadOut
    GET  /v1/rooms/{id}/uploads/{upload}           documents.UploadOut
    PUT  /v1/rooms/{id}/uploads/{upload}/chunks/{n} [sealed chunk bytes]  documents.UploadOut
    POST /v1/rooms/{id}/uploads/{upload}/complete [CompleteUploadRequest]  documents.BlobOut
    DELETE /v1/rooms/{id}/uploads/{upload}         204, no body
    GET  /v1/rooms/{id}/blobs/{blob}               application/octet-stream (the ciphertext)
    WS   /v1/rooms/{id}/stream?after=&since=       stream.ReadyFrame, BatchFrame, PongFrame
         [stream.AuthFrame, PingFrame]             (`parse_server_frame`); closes with
                                                   stream.CloseCode
    GET  /v1/logs                                  list[logs.LogSummary] (what the caller may read)
    GET  /v1/logs/{id}                             logs.LogOut
    GET  /v1/logs/{id}/checkpoint?size=            text/plain signed note (protocol.note)
    GET  /v1/logs/{id}/tile/...                    application/octet-stream (tlog-tiles)
    GET  /v1/logs/{id}/entries?start=&end=         logs.EntriesOut
    GET  /v1/logs/{id}/proof/inclusion             logs.InclusionOut
    GET  /v1/logs/{id}/proof/consistency           logs.ConsistencyOut
    POST /v1/logs/{id}/cosignatures [logs.CosignatureIn]  201, no body
    POST /v1/witnesses        [logs.WitnessIn]        logs.WitnessOut
    GET  /v1/witnesses                             list[logs.WitnessOut]
    any error (status >= 400)                      errors.ErrorBody
"""

from client_sdk.protocol.wire.base import Answer
from client_sdk.protocol.wire.parse import load_json, parse_answer, parse_answers, parse_shape

__all__ = ["Answer", "load_json", "parse_answer", "parse_answers", "parse_shape"]

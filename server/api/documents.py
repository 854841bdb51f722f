"""Uploads and blobs of encrypted documents (docs/design.md §7): thin routes over
`DocumentService`. A chunk's body is streamed to the service, never read whole."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse

from client_sdk.protocol.wire.documents import (
    BlobOut,
    CompleteUploadRequest,
    CreateUploadRequest,
    UploadOut,
)
from server.api.deps import CurrentPrincipal, DocumentsDep, PathId
from server.api.errors import (
    AUTHENTICATED,
    BINARY_SCHEMA,
    JSON_BODY,
    PARAMETERS,
    content_response,
    error_responses,
)
from server.errors import MalformedInput
from server.services.documents import UploadView

router = APIRouter(prefix="/v1/rooms/{room_id}")

ChunkIndex = Annotated[int, Path(ge=0, le=2**40)]
BlobName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{43}$")]


@router.post(
    "/uploads",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 403, 404, 409),
)
async def create_upload(
    room_id: PathId, body: CreateUploadRequest, principal: CurrentPrincipal, documents: DocumentsDep
) -> UploadOut:
    """Start an upload of a document's ciphertext (size and chunking declared)."""
    return upload_out(
        await documents.create_upload(
            principal, room_id, size=body.size, chunk_size=body.chunk_size, channel=body.channel
        )
    )


@router.get("/uploads/{upload_id}", responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404))
async def upload_status(
    room_id: PathId, upload_id: PathId, principal: CurrentPrincipal, documents: DocumentsDep
) -> UploadOut:
    """How far an upload got: resume from ``received_chunks``."""
    return upload_out(await documents.upload(principal, room_id, upload_id))


@router.put(
    "/uploads/{upload_id}/chunks/{index}",
    responses=error_responses(*AUTHENTICATED, *PARAMETERS, 400, 404, 409, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": BINARY_SCHEMA}},
        }
    },
)
async def append_chunk(
    room_id: PathId,
    upload_id: PathId,
    index: ChunkIndex,
    request: Request,
    principal: CurrentPrincipal,
    documents: DocumentsDep,
) -> UploadOut:
    """Store the next sealed chunk; its body is the chunk's bytes."""
    return upload_out(
        await documents.append_chunk(
            principal,
            room_id,
            upload_id,
            index,
            request.stream(),
            declared_length=_content_length(request),
        )
    )


@router.post(
    "/uploads/{upload_id}/complete",
    status_code=201,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, *PARAMETERS, 404, 409),
)
async def complete_upload(
    room_id: PathId,
    upload_id: PathId,
    body: CompleteUploadRequest,
    principal: CurrentPrincipal,
    documents: DocumentsDep,
) -> BlobOut:
    """Check the whole ciphertext's size and SHA-256 and keep it as a blob of the room."""
    row = await documents.complete(principal, room_id, upload_id, body.blob)
    return BlobOut(room_id=row.room_id, blob=row.blob, size=row.size, created_at=row.created_at)


@router.delete(
    "/uploads/{upload_id}",
    status_code=204,
    responses=error_responses(*AUTHENTICATED, *PARAMETERS, 404),
)
async def abandon_upload(
    room_id: PathId, upload_id: PathId, principal: CurrentPrincipal, documents: DocumentsDep
) -> Response:
    """Drop an unfinished upload and its bytes."""
    await documents.abandon(principal, room_id, upload_id)
    return Response(status_code=204)


@router.get(
    "/blobs/{blob}",
    response_class=StreamingResponse,
    responses={
        **content_response("application/octet-stream", "The blob's ciphertext."),
        **error_responses(*AUTHENTICATED, *PARAMETERS, 404),
    },
)
async def download_blob(
    room_id: PathId, blob: BlobName, principal: CurrentPrincipal, documents: DocumentsDep
) -> StreamingResponse:
    """A blob's ciphertext, streamed (members of the room only)."""
    read = await documents.read_blob(principal, room_id, blob)
    return StreamingResponse(
        read.body,
        media_type="application/octet-stream",
        headers={"Content-Length": str(read.size)},
    )


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise MalformedInput("Content-Length is not a number")
    return int(value)


def upload_out(view: UploadView) -> UploadOut:
    """The wire form of an upload."""
    return UploadOut(
        upload_id=view.id,
        room_id=view.room_id,
        size=view.size,
        chunk_size=view.chunk_size,
        chunk_count=view.chunk_count,
        ciphertext_size=view.ciphertext_size,
        received_chunks=view.received_chunks,
        received_bytes=view.received_bytes,
        created_at=view.created_at,
        expires_at=view.expires_at,
    )

"""Dependencies routes declare: the services and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request

from server.api.limits import RateLimiter, client_key
from server.errors import NotAuthenticated
from server.services.common import Principal
from server.services.devices import DeviceService
from server.services.documents import DocumentService
from server.services.health import HealthService
from server.services.identity import IdentityService
from server.services.instruments import InstrumentService
from server.services.logs import LogService
from server.services.messages import MessageService
from server.services.moderation import ModerationService
from server.services.rooms import RoomService
from server.services.streams import StreamService


@dataclass(frozen=True, slots=True)
class Services:
    """What the lifespan builds and routes use."""

    identity: IdentityService
    devices: DeviceService
    rooms: RoomService
    messages: MessageService
    logs: LogService
    moderation: ModerationService
    documents: DocumentService
    instruments: InstrumentService
    streams: StreamService
    health: HealthService
    rate_limiter: RateLimiter
    """Requests per device."""
    address_limiter: RateLimiter
    """Requests that need no token, and failed authentications, per client address."""


# Every dependency is `async def`: FastAPI runs a plain `def` on a worker thread,
# a thread hand-off per request for a dictionary lookup.


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _identity(request: Request) -> IdentityService:
    return _services(request).identity


async def _devices(request: Request) -> DeviceService:
    return _services(request).devices


async def _rooms(request: Request) -> RoomService:
    return _services(request).rooms


async def _messages(request: Request) -> MessageService:
    return _services(request).messages


async def _logs(request: Request) -> LogService:
    return _services(request).logs


async def _moderation(request: Request) -> ModerationService:
    return _services(request).moderation


async def _documents(request: Request) -> DocumentService:
    return _services(request).documents


async def _instruments(request: Request) -> InstrumentService:
    return _services(request).instruments


async def _health(request: Request) -> HealthService:
    return _services(request).health


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header value."""
    if not authorization:
        raise NotAuthenticated("missing Authorization: Bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


def charge_address(services: Services, host: str | None) -> None:
    """Count one unauthenticated request (or failed authentication) against the
    client's address; `RateLimited` when it has had its share."""
    services.address_limiter.check(client_key(host))


def _host(request: Request) -> str | None:
    return None if request.client is None else request.client.host


async def _current_principal(request: Request) -> Principal:
    services = _services(request)
    try:
        principal = await services.identity.authenticate(
            bearer_token(request.headers.get("authorization"))
        )
    except NotAuthenticated:
        charge_address(services, _host(request))  # guessing tokens is rate-limited too
        raise
    services.rate_limiter.check(principal.device_id)
    return principal


async def _public(request: Request) -> None:
    charge_address(_services(request), _host(request))


async def _bearer(request: Request) -> str:
    return bearer_token(request.headers.get("authorization"))


IdentityDep = Annotated[IdentityService, Depends(_identity)]
DevicesDep = Annotated[DeviceService, Depends(_devices)]
RoomsDep = Annotated[RoomService, Depends(_rooms)]
MessagesDep = Annotated[MessageService, Depends(_messages)]
LogsDep = Annotated[LogService, Depends(_logs)]
ModerationDep = Annotated[ModerationService, Depends(_moderation)]
DocumentsDep = Annotated[DocumentService, Depends(_documents)]
InstrumentsDep = Annotated[InstrumentService, Depends(_instruments)]
HealthDep = Annotated[HealthService, Depends(_health)]
CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]
LIMIT_BY_ADDRESS = Depends(_public)
"""``dependencies=[LIMIT_BY_ADDRESS]``: a route that needs no token, limited per address."""
BearerToken = Annotated[str, Depends(_bearer)]
PathId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
"""An id in a URL path, parsed like `Ident`: bytes the database refuses (NUL) never reach it."""

"""The application factory. Nothing is built at import time: `create_app` wires
settings into a lifespan that builds the database, hub and services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from server.api.deps import Services
from server.api.errors import install_error_handlers
from server.api.health import metrics_router
from server.api.limits import CHUNK_PATH, BodySizeLimit, RateLimiter
from server.api.main import api_router
from server.api.observe import RequestObserver
from server.api.ws import ConnectionCounter
from server.config import Settings
from server.log.appender import LogWriter
from server.log.keyguard import checked_signer
from server.metrics import Metrics
from server.realtime.fanout import Fanout, asyncpg_dsn
from server.realtime.hub import RoomHub
from server.services.common import Clock, system_clock
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
from server.storage.blobs import FileBlobStore, UploadFiles
from server.storage.database import create_database
from server.storage.migrate import upgrade_to_head


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """Build the Parley server application."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = create_database(settings.resolved_database_url())
        database.group_committed = metrics.group_commit_size.observe
        async with AsyncExitStack() as stack:
            stack.push_async_callback(database.dispose)
            if settings.auto_migrate:
                await upgrade_to_head(database)
            hub = RoomHub(settings.ws_queue_size)
            fanout = Fanout(hub, postgres_dsn=asyncpg_dsn(settings.resolved_database_url()))
            signer = await checked_signer(database, settings, clock())
            log = LogWriter(signer)
            log.leaf_committed = metrics.appended
            identity = IdentityService(database, settings, clock, log, fanout=fanout)
            await identity.ensure_directory_log()
            await fanout.start()
            stack.push_async_callback(fanout.stop)
            documents = DocumentService(
                database,
                settings,
                clock,
                FileBlobStore(settings.blob_dir()),
                UploadFiles(settings.upload_dir()),
            )
            await documents.sweep()
            sweeper = asyncio.create_task(documents.sweep_forever())
            stack.callback(sweeper.cancel)
            await identity.purge_sessions()
            purger = asyncio.create_task(identity.purge_sessions_forever())
            stack.callback(purger.cancel)
            devices = DeviceService(database, settings, clock, log, signer, fanout)
            watcher = asyncio.create_task(devices.close_revoked_streams_forever())
            stack.callback(watcher.cancel)
            app.state.services = Services(
                identity=identity,
                devices=devices,
                rooms=RoomService(database, settings, clock, fanout, log),
                messages=MessageService(database, settings, clock, fanout, log),
                logs=LogService(database, settings, clock, signer),
                moderation=ModerationService(database, settings, clock, fanout, log),
                documents=documents,
                instruments=InstrumentService(database, settings, clock, fanout, log),
                streams=StreamService(fanout),
                health=HealthService(database, signer, hub),
                rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
                address_limiter=RateLimiter(
                    settings.public_rate_limit_per_second,
                    settings.public_rate_limit_burst,
                    what="this address",
                ),
            )
            app.state.ws_connections = ConnectionCounter(settings.ws_connections_per_device)
            yield

    app = FastAPI(title="Parley", version="0.1.0", lifespan=lifespan)
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(api_router)
    if not settings.metrics_listen:
        app.include_router(metrics_router)
    # A document chunk is streamed to disk and its exact length checked by the service.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_message_bytes, exempt=CHUNK_PATH.match)
    # Outermost (added last): every answer, a 413 included, carries the request id.
    app.add_middleware(RequestObserver, metrics=metrics)
    return app

"""The `parley` command: the SDK's commands, plus any installed plugins
(``parley.cli`` entry points; the server adds ``serve`` and ``admin``)."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from client_sdk.cli import audit, documents, identity, messages, receipts, rooms
from client_sdk.cli.agreements import agree_app
from client_sdk.cli.dossier import dossier_app
from client_sdk.cli.excerpt import excerpt_app
from client_sdk.cli.offers import offer_app

PLUGIN_GROUP = "parley.cli"


def build_app() -> typer.Typer:
    """The whole `parley` command tree."""
    app = typer.Typer(
        name="parley",
        help="Parley: end-to-end-encrypted, verifiable mediated negotiations.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    identity.register(app)
    app.add_typer(rooms.room_app, name="room")
    app.add_typer(audit.audit_app, name="audit")
    app.add_typer(dossier_app, name="dossier")
    app.add_typer(excerpt_app, name="excerpt")
    app.add_typer(agree_app, name="agree")
    app.add_typer(documents.uploads_app, name="uploads")
    app.add_typer(offer_app, name="offer")
    messages.register(app)
    receipts.register(app)
    for entry in entry_points(group=PLUGIN_GROUP):
        entry.load()(app)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()

"""The server's commands as the `parley` command line lists them (a ``parley.cli``
entry point): names, where each lives, and their one-line help.

The command line imports `server.cli` only when ``serve`` or ``admin`` runs, so a
client command never loads the server's settings, FastAPI or SQLAlchemy.
"""

COMMANDS = (
    (
        "serve",
        "server.cli:serve",
        "Run the Parley server (SQLite in the data directory unless a database URL is set).",
    ),
    ("admin", "server.cli:admin_app", "Operator commands that work on the server's database."),
)
"""``(name, "module:attribute", help)`` for each command the server adds."""

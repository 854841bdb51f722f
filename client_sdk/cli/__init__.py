"""The `parley` command line (typer + rich), one module per command group.

`main.py` builds the command tree and adds installed plugins (the server's
`serve` and `admin`); `common.py` opens the client and turns every
`ParleyError` into one line on stderr (a JSON object with ``code`` and
``message`` under ``--json``) and one of the exit codes 0, 1, 2 and 130;
`identity.py`, `rooms.py`, `messages.py`, `dossier.py`, `excerpt.py` and
`audit.py` are the groups. Commands only parse arguments, call the SDK and
print: every check happens in `client_sdk.client` and `client_sdk.audit`.
"""

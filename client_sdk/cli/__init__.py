"""The `parley` command line (typer + rich), one module per command group.

`main.py` builds the command tree and adds installed plugins (the server's
`serve` and `admin`); `common.py` opens the client and turns every
`ParleyError` into one line (JSON under ``--json``) and an exit code;
`identity.py`, `rooms.py`, `messages.py`, `dossier.py`, `excerpt.py` and
`audit.py` are the groups. Commands only parse arguments, call the SDK and
print: every check happens in `client_sdk.client` and `client_sdk.audit`.
"""

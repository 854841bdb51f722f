"""The client's life: an enum with checked transitions (as httpx's ``ClientState``).

A client is unopened until first used or entered, open until closed, and closed for
good: using it then raises `ClientClosedError` instead of failing somewhere deep.
"""

from __future__ import annotations

import enum

from client_sdk.protocol.errors import ClientClosedError


class ClientState(enum.Enum):
    """Where a `ParleyClient` is in its life."""

    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


_ALLOWED = {
    ClientState.UNOPENED: {ClientState.OPENED, ClientState.CLOSED},
    ClientState.OPENED: {ClientState.CLOSED},
    ClientState.CLOSED: set[ClientState](),
}


class Lifecycle:
    """The state of one client; every public call goes through `use`."""

    def __init__(self) -> None:
        self.state = ClientState.UNOPENED

    def _move(self, new: ClientState) -> None:
        if new not in _ALLOWED[self.state]:
            raise ClientClosedError(f"client cannot go from {self.state.value} to {new.value}")
        self.state = new

    def use(self) -> None:
        """Check the client may be used (opening it on first use)."""
        if self.state is ClientState.CLOSED:
            raise ClientClosedError("the client is closed")
        if self.state is ClientState.UNOPENED:
            self._move(ClientState.OPENED)

    def enter(self) -> None:
        """``async with client``: a closed client cannot be entered again."""
        self.use()

    def close(self) -> bool:
        """Mark the client closed; False if it already was (closing twice is harmless)."""
        if self.state is ClientState.CLOSED:
            return False
        self._move(ClientState.CLOSED)
        return True

"""Commands loaded on first use, so `parley --help` and `parley send` pay only for
what they run (issue 11, "The command line").

The `parley` group knows each top-level command by a `LazyCommand`: its name, the
``module:attribute`` that holds it (a `typer.Typer` for a group of commands, a
function for a single command) and the one line `parley --help` shows. A command's
module is imported when the command is run or asked for its own help, never to
list it. Help is click's plain text (`rich_markup_mode` None): typer's rich help
alone costs more start-up than the ``httpx`` import the target is measured against.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer._click import Command, Context, HelpFormatter  # typer 0.29 vendors click
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A top-level command, named before its module is imported."""

    name: str
    target: str
    """``module:attribute``: a `typer.Typer` (a group) or a command function."""
    help: str
    """The line `parley --help` shows (a test holds it equal to the command's own)."""

    def load(self) -> Command:
        """Import the command's module and build its click command."""
        module, _, attribute = self.target.partition(":")
        value = getattr(importlib.import_module(module), attribute)
        if isinstance(value, typer.Typer):
            command: Command = typer.main.get_group(value)
        else:
            single = typer.Typer(add_completion=False, rich_markup_mode=None)
            single.command(self.name)(value)
            command = typer.main.get_command(single)
        command.name = self.name
        for part in _walk(command):
            if isinstance(part, TyperCommand | TyperGroup):
                part.rich_markup_mode = None
        return command

    def placeholder(self) -> Command:
        """What a help listing shows in place of the command."""
        return TyperCommand(name=self.name, help=self.help, rich_markup_mode=None)


def _walk(command: Command) -> Iterator[Command]:
    yield command
    for child in getattr(command, "commands", {}).values():
        yield from _walk(child)


def _none() -> Sequence[LazyCommand]:
    return ()


class LazyGroup(TyperGroup):
    """A typer group whose `entries` are imported only when run (see the module doc).

    `more` finds further entries (installed plugins); it is called only when a name
    is not among `entries` or the whole list is shown, as looking up entry points
    costs more than the rest of a command's start-up."""

    entries: ClassVar[tuple[LazyCommand, ...]] = ()
    more: ClassVar[Callable[[], Sequence[LazyCommand]]] = _none

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._lazy: dict[str, LazyCommand] = {}
        self._listing = False
        self._discovered = False
        self._add(self.entries)

    def _add(self, entries: Sequence[LazyCommand]) -> None:
        for entry in entries:
            if entry.name not in self.commands:
                self._lazy[entry.name] = entry
                self.commands[entry.name] = entry.placeholder()

    def _discover(self) -> None:
        if not self._discovered:
            self._discovered = True
            self._add(type(self).more())

    def list_commands(self, ctx: Context) -> list[str]:
        """Every command's name, plugins' included."""
        self._discover()
        return super().list_commands(ctx)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The command, its module imported now unless a help listing only names it."""
        if cmd_name not in self.commands:
            self._discover()
        entry = self._lazy.get(cmd_name)
        if entry is not None and not self._listing:
            del self._lazy[cmd_name]
            self.commands[cmd_name] = entry.load()
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The group's help, listing every command by its placeholder."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_group(
    entries: Sequence[LazyCommand], more: Callable[[], Sequence[LazyCommand]] = _none
) -> type[LazyGroup]:
    """A `LazyGroup` class holding `entries` (and `more` on demand), for
    ``typer.Typer(cls=...)``."""
    return type(
        "ParleyGroup", (LazyGroup,), {"entries": tuple(entries), "more": staticmethod(more)}
    )

"""The server's reach into the SDK, checked transitively: client_sdk.protocol and nothing
else (import-linter's contracts check direct imports; this follows every chain)."""

from __future__ import annotations

import grimp


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("server", "client_sdk", cache_dir=None)


def _outside_protocol(modules: set[str]) -> set[str]:
    return {
        m
        for m in modules
        if (m == "client_sdk" or m.startswith("client_sdk."))
        and not (m == "client_sdk.protocol" or m.startswith("client_sdk.protocol."))
    }


def test_the_server_reaches_only_the_sdks_protocol_code() -> None:
    graph = _graph()
    assert _outside_protocol(graph.find_upstream_modules("server", as_package=True)) == set()


def test_the_protocol_code_imports_nothing_else_of_the_sdk() -> None:
    graph = _graph()
    reached = graph.find_upstream_modules("client_sdk.protocol", as_package=True)
    assert _outside_protocol(reached) == set()

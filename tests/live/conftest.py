"""A real Reflex app per test (its own registration context, the in-memory state manager, a real token
manager), and a bound on every async test so a lost event fails the test instead of hanging it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import reflex as rx
from reflex_base.registry import RegistrationContext

ASYNC_TIMEOUT = 30.0  # generous: the machine is loaded; a passing test takes well under a second


@pytest.fixture
def reflex_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[rx.App]:
    """`rx.App()` as the web process builds it, on a fork of the registration context (one App per
    context) and with the memory state manager (the default disk manager would purge and write the
    shared states directory). Its `modify_state` works without a server: the event namespace and token
    manager exist from construction."""
    context = RegistrationContext.ensure_context().fork()
    reset = RegistrationContext.set(context)
    try:
        with monkeypatch.context() as patch:
            patch.setenv("REFLEX_STATE_MANAGER_MODE", "memory")
            app = rx.App()
        assert type(app.state_manager).__name__ == "StateManagerMemory"
        assert app.event_namespace is not None
        yield app
    finally:
        RegistrationContext.reset(reset)


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine to completion on a fresh event loop, failing after ASYNC_TIMEOUT seconds."""

    def run(coro: Coroutine[Any, Any, Any], timeout: float = ASYNC_TIMEOUT) -> Any:
        async def bounded() -> Any:
            async with asyncio.timeout(timeout):
                return await coro

        return asyncio.run(bounded())

    return run

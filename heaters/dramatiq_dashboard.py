"""Dramatiq's own dashboard (queues, delayed and dead-lettered messages, workers) at /admin/dramatiq.

`dramatiq-dashboard` is a WSGI app; a2wsgi runs it under our Starlette, behind the same session check as
every other admin page. Its metadata pins `dramatiq<2` and `redis<5`, which it works without (measured,
and rendered against a real Redis in tests/test_dramatiq_dashboard.py), so it is installed with
`--no-deps` from requirements-nodeps.txt.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from a2wsgi import WSGIMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

PREFIX = "/admin/dramatiq"


class _Dashboard:
    """The WSGI app, made at its first request: the broker exists only once the web app has set it up."""

    def __init__(self, prefix: str) -> None:
        self.prefix: str = prefix
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.app is None:
            import dramatiq
            from dramatiq_dashboard import DashboardApp

            from heaters.queues import Queue

            broker = dramatiq.get_broker()
            for queue in Queue:  # it lists the broker's declared queues: all of ours, consumed here or not
                broker.declare_queue(queue.value)
            self.app = DashboardApp(broker, self.prefix)
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.prefix):  # a2wsgi may hand over the full path; the app routes on the rest
            environ = {**environ, "PATH_INFO": path[len(self.prefix) :] or "/"}
        return self.app(environ, start_response)


class AdminOnly:
    """Admins pass; a signed-in reviewer gets 403; a visitor is sent to sign in (and back)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from heaters.api import request_user

        request = Request(scope)
        user = await run_in_threadpool(request_user, request)
        if user is None:
            target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
            await RedirectResponse(f"/login?next={target}", status_code=303)(scope, receive, send)
        elif not user.is_admin:
            await JSONResponse({"error": "admins only"}, status_code=403)(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def mount(prefix: str = PREFIX) -> Mount:
    return Mount(prefix, app=AdminOnly(WSGIMiddleware(_Dashboard(prefix))))  # type: ignore[arg-type]

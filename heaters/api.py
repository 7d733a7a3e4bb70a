"""Plain HTTP routes served in front of Reflex: health, sign-in and sign-out, the temp clip media route."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from heaters import dramatiq_dashboard, metrics
from heaters.adapters import get_redis, get_storage
from heaters.auth.service import authenticate
from heaters.auth.tokens import COOKIE_NAME, issue_token
from heaters.auth.web import SessionUser, safe_next, session_user
from heaters.db import get_engine, unit_of_work
from heaters.health import readiness
from heaters.playback import names as playback_names
from heaters.playback.serve import resolve as resolve_temp_clip
from heaters.settings import get_settings

Endpoint = Callable[[Request], Awaitable[Response]]


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers. No dependency is called."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: one entry per dependency; 503 when any is not ready."""
    results = await run_in_threadpool(readiness, get_engine(), get_redis(), get_storage())
    ok = all(r.ok for r in results)
    body = {"status": "ready" if ok else "not ready", "checks": {r.name: r.public() for r in results}}
    return JSONResponse(body, status_code=200 if ok else 503)


def request_user(request: Request) -> SessionUser | None:
    settings = get_settings()
    with unit_of_work() as session:
        return session_user(
            session,
            request.cookies.get(COOKIE_NAME),
            settings.secret_key.get_secret_value(),
            settings.session_ttl_hours * 3600,
        )


def login_required(endpoint: Endpoint, *, admin: bool = False) -> Endpoint:
    """Media and API routes answer 401 (403 for non-admins) instead of redirecting."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        user = await run_in_threadpool(request_user, request)
        if user is None:
            return JSONResponse({"error": "sign in required"}, status_code=401)
        if admin and not user.is_admin:
            return JSONResponse({"error": "admins only"}, status_code=403)
        request.state.user = user
        return await endpoint(request)

    return guarded


def _sign_in(username: str, password: str) -> int | None:
    with unit_of_work() as session:
        user = authenticate(session, username, password)
        return user.id if user else None


async def login(request: Request) -> Response:
    """A native form POST: the session cookie is HttpOnly, so no script ever sees it."""
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next") or "/"))
    user_id = await run_in_threadpool(_sign_in, username, password) if username and password else None
    if user_id is None:
        return RedirectResponse(f"/login?error=1&next={quote(target, safe='')}", status_code=303)
    settings = get_settings()
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        issue_token(user_id, settings.secret_key.get_secret_value()),
        max_age=settings.session_ttl_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or settings.app_env == "production",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


async def whoami(request: Request) -> JSONResponse:
    user: SessionUser = request.state.user
    return JSONResponse({"id": user.id, "username": user.username, "role": user.role})


NOT_FOUND = {"error": "not found"}


async def temp_clip(request: Request) -> Response:
    """A temp clip, with HTTP ranges (Starlette's FileResponse: 206, 416, HEAD, If-Range).

    Only names of the form `clip_<id>_<ms>.mp4` are looked up; anything else, `..`, encoded slashes and
    NUL bytes included, is a 404 before any file is touched.
    """
    name = str(request.path_params["name"])
    if playback_names.parse(name) is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    path = await run_in_threadpool(resolve_temp_clip, name)
    if path is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    # Each generation has a new name, so a URL's bytes never change: the browser may keep them.
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600, immutable"})


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus: for a signed-in admin, or a scraper with `Authorization: Bearer $METRICS_TOKEN`."""
    token = get_settings().metrics_token
    given = request.headers.get("authorization", "")
    if not (token and hmac.compare_digest(given, f"Bearer {token.get_secret_value()}")):
        user = await run_in_threadpool(request_user, request)
        if user is None:
            return JSONResponse({"error": "sign in required"}, status_code=401)
        if not user.is_admin:
            return JSONResponse({"error": "admins only"}, status_code=403)
    body, content_type = await run_in_threadpool(metrics.render)
    return Response(body, media_type=content_type)


def create_api(extra_routes: list[BaseRoute] | None = None) -> Starlette:
    """A new Starlette for each app: Reflex adds its middleware to it (it cannot be reused)."""
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/api/login", login, methods=["POST"]),
            Route("/api/logout", logout, methods=["POST"]),
            Route("/api/whoami", login_required(whoami)),
            Route("/metrics", metrics_endpoint),
            Route(playback_names.ROUTE_PREFIX + "{name:path}", login_required(temp_clip), methods=["GET", "HEAD"]),
            dramatiq_dashboard.mount(),
            *(extra_routes or []),
        ]
    )

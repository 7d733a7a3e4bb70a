"""A simulated browser tab for a Reflex 0.10.1 app: its websocket event protocol without Chromium.

Usage::

    review = state_name("heaters.pages.review.state", "ReviewState")  # substates: state_path(parent, child)
    REVIEW, ACT = state_path(review), event_name(review, handler="act")
    client = ReflexClient("http://127.0.0.1:8000", cookies={"heaters_session": token}, path="/review?video=1")
    await client.connect()  # handshake + hydrate_and_load; returns once the page's on_load handlers have run
    sent_at = await client.send(ACT, {"verdict": "keep"})
    update = await client.wait_for(lambda s: s[REVIEW]["verdict_rx_state_"] == "keep", timeout=5)
    print(update.received_at - sent_at)  # round trip in time.perf_counter() seconds; client.updates has them all
    await client.close()

For the browser's exact frames pass ``frontend=CompiledFrontend.load(".web")`` (its initialState, hashes and
stateSchema) and ``load_page=True`` (GET the page first: production redirects ``/review`` to ``/review/``, so a
browser's ``router.url.path`` has the slash). With both, the CONNECT and event frames matched Chromium's byte for
byte on a probe app, token aside.

Transport. python-socketio's AsyncClient needs aiohttp (python-engineio's "asyncio-client" extra), which the venv
lacks, so this module speaks Engine.IO v4 / Socket.IO v5 itself over ``wsproto`` (already installed and locked: the
engine.io server's simple-websocket needs it) on asyncio streams. Websocket only, as the server allows nothing else.

The protocol, as read from the installed Reflex 0.10.1 (site-packages paths):

- Endpoint. The Socket.IO app is mounted at ``/_event`` with ``socketio_path=""`` (reflex/app.py:656-696), so the
  Engine.IO URL is ``ws://HOST/_event/?EIO=4&transport=websocket&token=TOKEN``. The server has
  ``transports=[config.transport]`` ("websocket" by default) and ``allow_upgrades=False`` (reflex/app.py:626-651).
  The Socket.IO namespace is the endpoint's path, ``/_event`` (reflex_base/config.py:803-810), so every packet is
  namespaced: ``40/_event,{auth}``, ``42/_event,["event",{...}]``.
- Token. The browser makes a UUID v4 per tab, kept in sessionStorage (utils/state.js:91-126), and passes it in the
  query string, with the Reflex version as the websocket subprotocol (utils/state.js:189-197). The server links the
  token to the sid (reflex/app.py:2233-2242) and warns on a subprotocol other than its version (2244-2248). A token
  already connected elsewhere is replaced and the new one sent as a ``new_token`` event (reflex/app.py:2561-2565).
  (utils/state.js is reflex_base/.templates/web/utils/state.js; the built .web/utils/state.js is identical.)
- Hydrate. No separate hydrate round trip: the socket.io CONNECT packet's auth payload is
  ``{"event": BOOT_EVENT, "state_schema": HASH}`` (keys CompileVars.CONNECT_AUTH_EVENT / CONNECT_AUTH_STATE_SCHEMA,
  reflex_base/constants/compiler.py:61-70; utils/state.js:920-932). ``EventNamespace.on_connect`` runs the boot event
  through ``on_event`` itself (reflex/app.py:2191-2266). The boot event is
  ``reflex___state____state.hydrate_and_load`` with payload ``{"vars": {client storage}, "hashes": [...]}``
  (reflex_base/compiler/templates.py:354-364); both keys are optional. Without ``hashes`` the server sends the
  whole state tree (this client's default, having no compiled ``initialState``); with them, as the browser sends
  on a page's first connect, only what differs from the compiled defaults (reflex/state.py:2448-2514).
  ``state_schema`` is optional too: if sent and different from the backend's, the server emits ``state_mismatch``
  (reflex/app.py:2211-2232). ``hydrate_and_load`` emits the snapshot with ``is_hydrated`` false and, if the page
  has on_load handlers, chains ``...on_load_internal`` (reflex/state.py:2860-2889), which queues them and then
  ``set_is_hydrated(True)`` (reflex/state.py:2714-2738). So ``is_hydrated_rx_state_`` turning true in the root
  state means on_load is done.
- Client-side navigation sends ``reflex___state____state.reflex___state____on_load_internal_state.on_load_internal``
  with the new router data (compiler/templates.py:328-347, utils/state.js:1628-1663).
- Events. ``socket.emit("event", {name, payload, router_data})`` (utils/state.js:670-682); the server keeps only
  the fields of ``Event``: name, router_data, payload (reflex_base/event/__init__.py:88-101, 170; there is no token
  field, the token comes from the sid). ``name`` is the full state path plus the handler: each state's name is
  ``to_snake_case(module.replace(".", "___") + "___" + ClassName)`` and the path joins the names from the root
  ``reflex___state____state`` with dots (reflex/state.py:1190-1211, reflex_base/utils/format.py:164-177, 438-475).
  E.g. ``heaters.pages.review.state.ReviewState.act`` -> see ``state_name`` and ``event_name`` below.
- router_data, as the browser fills it for every event (utils/state.js:691-722): ``pathname`` (location.pathname),
  ``asPath`` (pathname + search + hash) and, only if non-empty, ``query`` (the search params plus dynamic route
  params). The server adds per connection ``sid``, ``headers`` (the websocket handshake's headers, repeated
  ``cookie`` headers joined with "; ") and ``ip``, per event ``token`` and the route pattern for ``pathname``
  (reflex/app.py:2101-2126, 2268-2304, 2433-2451). ``router.headers.cookie`` is therefore the Cookie header of the
  websocket upgrade request, and ``router.url`` is the ``Origin`` header plus ``asPath`` (reflex/istate/data.py:
  94-120, 493-507), so this client sends Origin (= the page's origin, which must be in cors_allowed_origins) and
  Cookie as a browser does.
- Updates. The server emits ``event`` with ``{"delta": {full_state_name: {var_rx_state_: value}}, "events": [...]}``,
  empty keys left out (reflex/app.py:2345-2375, reflex/state.py:3007-3050). ``final`` is deprecated since 0.9 and
  never sent: nothing marks an event as finished, so a caller waits for the state it expects. Var keys carry the
  ``_rx_state_`` suffix (reflex_base/constants/state.py:14), computed vars included. The browser merges each
  substate's delta key by key (utils/state.js:407-418, 1167-1185). ``events`` holds only frontend events
  (names starting with "_", e.g. ``_redirect``): backend events are chained on the server
  (reflex_base/event/processor/base_state_processor.py:219-239). This client records them, and on request follows
  same-origin ``_redirect`` events the way the browser's router does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import importlib.metadata
import json
import re
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

ROOT_STATE = "reflex___state____state"
FIELD_MARKER = "_rx_state_"
HYDRATE_AND_LOAD = f"{ROOT_STATE}.hydrate_and_load"
ON_LOAD_INTERNAL = f"{ROOT_STATE}.reflex___state____on_load_internal_state.on_load_internal"
UPDATE_VARS_INTERNAL = f"{ROOT_STATE}.reflex___state____update_vars_internal_state.update_vars_internal"
IS_HYDRATED = f"is_hydrated{FIELD_MARKER}"
EVENT_PATH = "/_event"
# What Chromium sends on a websocket upgrade besides the headers wsproto writes itself.
BROWSER_HEADERS: Mapping[str, str] = {
    "User-Agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
    ),
    "Pragma": "no-cache",
    "Cache-Control": "no-cache",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "en-US,en;q=0.9",
}

State = dict[str, dict[str, Any]]
Predicate = Callable[[State], bool]


def state_name(module: str, class_name: str) -> str:
    """One state's name as Reflex makes it (reflex/state.py:1190-1197): module path and class, snake case."""
    text = f"{module.replace('.', '___')}___{class_name}"
    text = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", text)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower().replace("-", "_")


def state_path(*names: str) -> str:
    """The full name of a state from its names below the root (reflex/state.py:1201-1211); the root is implied."""
    parts = [part for name in names for part in name.split(".")]
    if not parts or parts[0] != ROOT_STATE:
        parts.insert(0, ROOT_STATE)
    return ".".join(parts)


def event_name(*names: str, handler: str) -> str:
    """The event name the frontend sends for ``handler`` on the state at ``names`` (format.py:438-475)."""
    return f"{state_path(*names)}.{handler}"


def reflex_version() -> str:
    """The installed Reflex's version: the subprotocol the frontend offers (utils/state.js:193)."""
    try:
        return importlib.metadata.version("reflex")
    except importlib.metadata.PackageNotFoundError:
        return "0.10.1"


@dataclass(frozen=True, slots=True)
class CompiledFrontend:
    """What a built frontend holds before it connects (reflex_base/compiler/templates.py:412-414).

    With it a client sends the browser's exact boot event (``hashes``, ``state_schema``) and starts from the compiled
    ``initialState``, so the server sends only what differs from it, as it does for a real tab.
    """

    initial_state: State
    hashes: list[str]
    state_schema: str

    @classmethod
    def load(cls, web_dir: str | Path) -> CompiledFrontend:
        """Read them from a built ``.web`` directory (``utils/context.jsx``, one JSON literal per line)."""
        source = (Path(web_dir) / "utils" / "context.jsx").read_text()

        def const(name: str) -> Any:
            match = re.search(rf"^export const {name} = (.*)$", source, re.MULTILINE)
            if match is None:
                raise ValueError(f"{name} not found in {web_dir}/utils/context.jsx")
            return json.loads(match.group(1))

        return cls(const("initialState"), const("initialStateHashes"), const("stateSchema"))


@dataclass(frozen=True, slots=True)
class Update:
    """One ``event`` message from the server, with its arrival time (``time.perf_counter()``)."""

    seq: int
    received_at: float
    delta: State
    events: list[dict[str, Any]]


@dataclass(slots=True)
class _Waiter:
    predicate: Predicate
    future: asyncio.Future[Update]


class ReflexError(RuntimeError):
    """The server refused the connection, closed it, or did not answer in time."""


class ReflexClient:
    """One simulated browser tab on one page of a Reflex app. Not thread-safe; one event loop."""

    def __init__(
        self,
        base_url: str,
        *,
        path: str = "/",
        cookies: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        backend_url: str | None = None,
        event_path: str = EVENT_PATH,
        token: str | None = None,
        route_params: Mapping[str, str] | None = None,
        storage_vars: Mapping[str, str] | None = None,
        state_schema: str | None = None,
        frontend: CompiledFrontend | None = None,
        load_page: bool = False,
        follow_redirects: bool = False,
        compression: bool = True,
        keep_updates: bool = True,
    ) -> None:
        """Describe the tab; nothing connects until ``connect()``.

        Args:
            base_url: The page origin the browser loaded the app from (sent as Origin; it makes ``router.url``).
            path: The page path with its query string (and fragment), as in the address bar.
            cookies: Cookies the browser would send to the backend (HttpOnly ones included).
            headers: More handshake headers, or overrides of ``BROWSER_HEADERS`` (e.g. X-Forwarded-For).
            backend_url: Where the websocket goes, if not to ``base_url`` (dev mode's separate backend port).
            event_path: The event endpoint, with any ``backend_path`` prefix; also the Socket.IO namespace.
            token: The tab's client token; a fresh UUID v4 by default, as a new tab gets.
            route_params: Dynamic route arguments (``/video/[id]`` -> ``{"id": "3"}``): the frontend adds them to
                ``router_data.query``.
            storage_vars: Client storage (rx.Cookie / rx.LocalStorage) values, by full ``state.var`` name, sent
                in the hydrate event as the browser does.
            state_schema: The compiled frontend's ``stateSchema`` (in .web/utils/context.jsx), to have the
                server check it; left out by default, which the server accepts as an older frontend.
            frontend: The built frontend's initial state, hashes and schema (``CompiledFrontend.load(".web")``);
                without it the client starts empty and the server sends the whole state tree.
            load_page: GET the page first, with the cookies, following redirects, as the browser's address bar
                does; the path becomes the final URL's (production serves ``/review`` as ``/review/``, so the
                browser's ``router.url.path`` has the trailing slash). Records ``page_status`` and
                ``page_seconds``.
            follow_redirects: Follow same-origin ``_redirect`` events by navigating, as the browser's router does.
            compression: Offer permessage-deflate, as browsers do.
            keep_updates: Keep every Update in ``updates``; off, only the merged state and the last update.
        """
        self.base_url = base_url.rstrip("/")
        origin = urlsplit(self.base_url)
        self.origin = f"{origin.scheme}://{origin.netloc}"
        self.backend_url = (backend_url or self.base_url).rstrip("/")
        self.event_path = "/" + event_path.strip("/")
        self.cookies = dict(cookies or {})
        self.headers = {**BROWSER_HEADERS, **(headers or {})}
        self.token = token or str(uuid.uuid4())
        self.route_params = dict(route_params or {})
        self.storage_vars = dict(storage_vars or {})
        self.frontend = frontend
        self.state_schema = state_schema if state_schema is not None or frontend is None else frontend.state_schema
        self.load_page = load_page
        self.follow_redirects = follow_redirects
        self.compression = compression
        self.keep_updates = keep_updates
        self.path = path if path.startswith("/") else "/" + path

        self.state: State = copy.deepcopy(frontend.initial_state) if frontend else {}
        self.page_status: int | None = None
        self.page_seconds: float | None = None
        self.updates: list[Update] = []
        self.last_update: Update | None = None
        self.frontend_events: list[dict[str, Any]] = []
        self.redirects: list[str] = []
        self.server_events: list[tuple[float, str, list[Any]]] = []  # socket events other than "event"
        self.sid: str | None = None
        self.engine_sid: str | None = None
        self.connected_at: float | None = None
        self.hydrated_at: float | None = None
        self.closed_reason: str | None = None

        self._seq = 0
        self._boots = 0
        self._waiters: list[_Waiter] = []
        self._ws: WSConnection | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._handshake: asyncio.Future[None] | None = None
        self._namespace_connected: asyncio.Future[None] | None = None
        self._text_parts: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------- public API

    @property
    def hydrated(self) -> bool:
        """Whether the root state says the page's on_load handlers have run."""
        return bool(self.state.get(ROOT_STATE, {}).get(IS_HYDRATED))

    @property
    def router_data(self) -> dict[str, Any]:
        """What the frontend puts in every event for the current page (utils/state.js:691-722)."""
        url = urlsplit(self.path)
        pathname = url.path or "/"
        as_path = pathname + (f"?{url.query}" if url.query else "") + (f"#{url.fragment}" if url.fragment else "")
        data: dict[str, Any] = {"pathname": pathname, "asPath": as_path}
        query = {**dict(parse_qsl(url.query, keep_blank_values=True)), **self.route_params}
        if query:
            data["query"] = query
        return data

    def get(self, state: str, var: str, default: Any = None) -> Any:
        """A var's merged value: ``state`` with or without the root prefix, ``var`` without the suffix."""
        return self.state.get(state_path(state), {}).get(var + FIELD_MARKER, default)

    async def connect(self, *, timeout: float = 30.0, wait_hydrated: bool = True) -> None:
        """Open the websocket as the browser does, hydrate, and (by default) wait until on_load has run."""
        if self.load_page:
            await self._load_page(timeout)
        split = urlsplit(self.backend_url)
        secure = split.scheme in ("https", "wss")
        host = split.hostname or "127.0.0.1"
        port = split.port or (443 if secure else 80)
        query = urlencode({"token": self.token, "EIO": "4", "transport": "websocket"})
        target = f"{self.event_path}/?{query}"
        extra = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        extra.append((b"origin", self.origin.encode()))
        if self.cookies:
            extra.append((b"cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode()))

        loop = asyncio.get_running_loop()
        self._handshake = loop.create_future()
        self._namespace_connected = loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    host, port, ssl=ssl.create_default_context() if secure else None
                )
                self._ws = WSConnection(ConnectionType.CLIENT)
                self._write(
                    Request(
                        host=split.netloc,
                        target=target,
                        extra_headers=extra,
                        subprotocols=[reflex_version()],
                        extensions=[PerMessageDeflate()] if self.compression else [],
                    )
                )
                self._read_task = asyncio.create_task(self._read_loop(), name=f"reflex-client-{self.token}")
                await self._handshake
                await self._namespace_connected
                self.connected_at = time.perf_counter()
                if wait_hydrated:
                    await self._wait(lambda s: bool(s.get(ROOT_STATE, {}).get(IS_HYDRATED)))
        except TimeoutError as exc:
            await self.close()
            raise ReflexError(f"no {'hydration' if self.sid else 'connection'} within {timeout}s") from exc
        except BaseException:
            await self.close()
            raise

    async def send(self, name: str, payload: Mapping[str, Any] | None = None) -> float:
        """Send one event as the frontend does; returns ``time.perf_counter()`` just before it is written."""
        event = {"name": name, "payload": dict(payload or {}), "router_data": self.router_data}
        return await self._emit("event", event)

    async def wait_for(self, predicate: Predicate, timeout: float = 10.0) -> Update:
        """Wait until ``predicate(merged state)`` holds; returns the Update that made it hold.

        A predicate that is already true returns the latest Update at once. A KeyError or IndexError inside the
        predicate counts as false, so ``lambda s: s[STATE]["count_rx_state_"] == 3`` is fine before the var
        arrives.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self._wait(predicate)
        except TimeoutError as exc:
            raise ReflexError(f"predicate not met within {timeout}s (closed: {self.closed_reason})") from exc

    async def request(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        until: Predicate | None = None,
        timeout: float = 10.0,
    ) -> tuple[float, Update]:
        """Send an event and wait for ``until`` (default: the next update); returns (round trip s, update)."""
        seq = self._seq
        condition = until or (lambda _state: self._seq > seq)
        sent_at = await self.send(name, payload)
        update = await self.wait_for(condition, timeout)
        return update.received_at - sent_at, update

    async def navigate(self, path: str, *, timeout: float = 30.0, wait_hydrated: bool = True) -> None:
        """Client-side navigation: new router data, then on_load_internal (utils/state.js:1628-1663)."""
        self.path = path if path.startswith("/") else "/" + path
        self.state.setdefault(ROOT_STATE, {})[IS_HYDRATED] = False
        if self.storage_vars:
            await self.send(UPDATE_VARS_INTERNAL, {"vars": self.storage_vars})
        await self.send(ON_LOAD_INTERNAL)
        if wait_hydrated:
            await self.wait_for(lambda s: bool(s.get(ROOT_STATE, {}).get(IS_HYDRATED)), timeout)

    async def close(self) -> None:
        """Disconnect like ``socket.disconnect()``: socket.io DISCONNECT, engine.io CLOSE, websocket close."""
        if self._ws is not None and self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(Exception):
                if self.sid is not None:
                    self._send_text(f"41{self.event_path},")
                self._send_text("1")
                self._write(CloseConnection(code=1000))
                await asyncio.wait_for(self._writer.drain(), 2)
        if self._read_task is not None and not self._read_task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._read_task), 2)
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._read_task
        for task in list(self._tasks):
            task.cancel()
        self._shutdown("closed by client")

    async def __aenter__(self) -> ReflexClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- transport

    async def _load_page(self, timeout: float) -> None:
        import httpx  # locked with the project; only this option needs it

        # httpx decodes gzip and deflate only; the page's encoding does not matter here, its final URL does.
        skip = ("pragma", "cache-control", "accept-encoding")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        started = time.perf_counter()
        async with httpx.AsyncClient(cookies=self.cookies, headers=headers, timeout=timeout) as http:
            response = await http.get(self.base_url + self.path, follow_redirects=True)
        self.page_seconds = time.perf_counter() - started
        self.page_status = response.status_code
        final = response.url
        fragment = urlsplit(self.path).fragment
        self.path = final.path + (f"?{final.query.decode()}" if final.query else "")
        self.path += f"#{fragment}" if fragment else ""

    def _write(self, event: Request | CloseConnection | TextMessage | Any) -> None:
        assert self._ws is not None and self._writer is not None
        self._writer.write(self._ws.send(event))

    def _send_text(self, text: str) -> None:
        self._write(TextMessage(data=text))

    async def _emit(self, event: str, *args: Any) -> float:
        if self.sid is None or self._writer is None or self._writer.is_closing():
            raise ReflexError(f"not connected ({self.closed_reason or 'never connected'})")
        text = "42" + self.event_path + "," + json.dumps([event, *args], separators=(",", ":"))
        sent_at = time.perf_counter()
        self._send_text(text)
        await self._writer.drain()
        return sent_at

    async def _read_loop(self) -> None:
        assert self._reader is not None and self._ws is not None
        reason = "connection lost"
        try:
            while True:
                data = await self._reader.read(65536)
                self._ws.receive_data(data or None)
                for event in self._ws.events():
                    if isinstance(event, TextMessage):
                        self._text_parts.append(event.data)
                        if event.message_finished:
                            text, self._text_parts = "".join(self._text_parts), []
                            self._on_engineio(text)
                    elif isinstance(event, Ping):
                        self._write(event.response())
                    elif isinstance(event, AcceptConnection):
                        _resolve(self._handshake)
                    elif isinstance(event, RejectConnection):
                        _fail(self._handshake, ReflexError(f"websocket refused: HTTP {event.status_code}"))
                    elif isinstance(event, RejectData):
                        if event.body_finished:
                            reason = "websocket refused"
                    elif isinstance(event, CloseConnection):
                        reason = f"server closed the websocket ({event.code} {event.reason or ''})".strip()
                        with contextlib.suppress(Exception):
                            self._write(event.response())
                        return
                    elif isinstance(event, BytesMessage):
                        pass  # Reflex sends JSON text only.
                if not data:
                    return
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            self._shutdown(reason)

    def _on_engineio(self, text: str) -> None:
        kind, body = text[:1], text[1:]
        if kind == "4":
            self._on_socketio(body)
        elif kind == "2":  # server ping (Engine.IO v4: the server pings, the client pongs)
            self._send_text("3" + body)
        elif kind == "0":
            opened = json.loads(body)
            self.engine_sid = opened.get("sid")
            auth: dict[str, Any] = {"event": self._boot_event()}
            if self.state_schema is not None:
                auth["state_schema"] = self.state_schema
            self._send_text("40" + self.event_path + "," + json.dumps(auth, separators=(",", ":")))
        elif kind == "1":
            self._shutdown("server closed the engine.io session")

    def _on_socketio(self, body: str) -> None:
        kind, rest = body[:1], body[1:]
        namespace = "/"
        if rest.startswith("/"):
            namespace, _, rest = rest.partition(",")
        if namespace != self.event_path:
            return
        while rest[:1].isdigit():  # an ack id, which Reflex never asks for
            rest = rest[1:]
        data = json.loads(rest) if rest else None
        if kind == "2" and isinstance(data, list) and data:
            name, args = data[0], data[1:]
            if name == "event" and args and isinstance(args[0], dict):
                self._on_update(args[0])
                return
            self.server_events.append((time.perf_counter(), name, args))
            if name == "new_token" and args:
                self.token = str(args[0])
        elif kind == "0":
            self.sid = (data or {}).get("sid")
            _resolve(self._namespace_connected)
        elif kind == "4":
            message = data.get("message") if isinstance(data, dict) else data
            _fail(self._namespace_connected, ReflexError(f"socket.io connect refused: {message}"))
        elif kind == "1":
            self._shutdown("server disconnected the namespace")

    # ----------------------------------------------------------------- state

    def _boot_event(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"vars": self.storage_vars} if self.storage_vars else {}
        if self.frontend is not None and self._boots == 0:
            payload["hashes"] = self.frontend.hashes  # only the first hydrate of a page (templates.py:360-362)
        self._boots += 1
        return {"name": HYDRATE_AND_LOAD, "payload": payload, "router_data": self.router_data}

    def _on_update(self, message: Mapping[str, Any]) -> None:
        received_at = time.perf_counter()
        delta: State = message.get("delta") or {}
        events: list[dict[str, Any]] = message.get("events") or []
        for substate, values in delta.items():
            self.state.setdefault(substate, {}).update(values)
        self._seq += 1
        update = Update(self._seq, received_at, delta, events)
        self.last_update = update
        if self.keep_updates:
            self.updates.append(update)
        if self.hydrated_at is None and self.hydrated:
            self.hydrated_at = received_at
        for event in events:
            self._on_frontend_event(event)
        self._check_waiters(update)

    def _on_frontend_event(self, event: Mapping[str, Any]) -> None:
        name = str(event.get("name", ""))
        if not name.startswith("_"):
            # A backend event in an update is queued and sent back by the frontend (utils/state.js:1177-1181).
            self._spawn(self.send(name, event.get("payload")))
            return
        self.frontend_events.append(dict(event))
        if name == "_redirect":
            target = str((event.get("payload") or {}).get("path") or "")
            if not target:
                return
            self.redirects.append(target)
            split = urlsplit(target)
            same_origin = not split.netloc or f"{split.scheme}://{split.netloc}" == self.origin
            if self.follow_redirects and same_origin and not (event.get("payload") or {}).get("external"):
                local = split.path + (f"?{split.query}" if split.query else "")
                local += f"#{split.fragment}" if split.fragment else ""
                self._spawn(self.navigate(local, wait_hydrated=False))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wait(self, predicate: Predicate) -> asyncio.Future[Update]:
        future: asyncio.Future[Update] = asyncio.get_running_loop().create_future()
        if self.closed_reason is not None:
            future.set_exception(ReflexError(self.closed_reason))
        elif _holds(predicate, self.state):
            future.set_result(self.last_update or Update(0, time.perf_counter(), {}, []))
        else:
            self._waiters.append(_Waiter(predicate, future))
        return future

    def _check_waiters(self, update: Update) -> None:
        waiting = []
        for waiter in self._waiters:
            if waiter.future.done():
                continue
            if _holds(waiter.predicate, self.state):
                waiter.future.set_result(update)
            else:
                waiting.append(waiter)
        self._waiters = waiting

    def _shutdown(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        error = ReflexError(self.closed_reason)
        _fail(self._handshake, error)
        _fail(self._namespace_connected, error)
        for waiter in self._waiters:
            _fail(waiter.future, error)
        self._waiters = []
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()


def _holds(predicate: Predicate, state: State) -> bool:
    try:
        return bool(predicate(state))
    except LookupError:
        return False


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[Any] | None, error: BaseException) -> None:
    if future is not None and not future.done():
        future.set_exception(error)
        future.exception()  # mark retrieved: nobody may be awaiting it any more


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def _main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="Open one simulated tab and print the hydrated state.")
    parser.add_argument("base_url")
    parser.add_argument("--path", default="/")
    parser.add_argument("--cookie", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    cookies = dict(cookie.split("=", 1) for cookie in args.cookie)
    client = ReflexClient(args.base_url, path=args.path, cookies=cookies)
    started = time.perf_counter()
    await client.connect()
    print(f"hydrated in {(time.perf_counter() - started) * 1000:.1f} ms, token {client.token}, sid {client.sid}")
    print(json.dumps(client.state, indent=2, default=str))
    print("frontend events:", client.frontend_events)
    await client.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))

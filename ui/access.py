"""Who may reach what when the page has a login (``agent serve --auth``).

Gradio checks the login on some routes only: in 6.31 ``/gradio_api/heartbeat``, ``/cancel``,
``/reset``, ``/token``, ``/user``, ``/app_id``, ``/stream/...``, ``/runs``, ``/monitoring/<key>``
and FastAPI's ``/openapi.json`` answer anyone, and ``/login`` takes any number of guesses.
:class:`AccessGuard` is an ASGI middleware in front of all of them that

* answers 401 to every request without a logged-in session, except the login page and what a
  browser needs to draw it (:data:`PUBLIC_PATHS`, :data:`PUBLIC_PREFIXES`), and leaves the API
  description Gradio embeds out of the login page;
* slows password guessing per client address (:class:`LoginBackoff`): after
  ``max_failures`` wrong logins, 429 with ``Retry-After`` for a lock that doubles with each
  further failure;
* rewrites error answers (4xx/5xx), with a login or without, so that they show file names,
  never server paths.

The session is Gradio's own (its login cookie and token table), so logging in works as before.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ui.messages import hide_paths

# The login page ("/" answers it while nobody is logged in), its form's target, and the files a
# browser loads to draw it. Everything else needs the session.
PUBLIC_PATHS = frozenset({
    "/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/gradio_api/theme.css",
    "/manifest.json", "/pwa_icon", "/robots.txt",
    "/gradio_api/login_check", "/gradio_api/login_check/",  # answers 401 itself without a session
    # Gradio's launch() calls it (without a login) to run the startup events; they run once, so
    # any later call only answers "false".
    "/gradio_api/startup-events",
})
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon/")
LOGIN_PATHS = frozenset({"/login", "/login/"})
# Error bodies are small JSON or text and the login page some tens of KB; a body bigger than this
# is passed on as it is rather than held in memory.
_MAX_REWRITTEN_BODY = 1024 * 1024
# Gradio's template: `<script>window.gradio_api_info = {json};</script>`, the JSON with "<"
# escaped (so it cannot hold "</script>").
_API_DESCRIPTION = re.compile(r"(window\.gradio_api_info\s*=\s*).*?(;\s*</script>)", re.DOTALL)


@dataclass(frozen=True)
class LoginLimits:
    """How hard guessing the password is made.

    Args:
        max_failures: Wrong logins from one address before it has to wait.
        first_lock_s: The first wait; it doubles with each further wrong login.
        max_lock_s: The longest wait (a steady guesser gets one try per ``max_lock_s``).
        forget_after_s: Failures are forgotten this long after the last one.
        max_clients: Addresses remembered at most (the oldest are dropped first), so a flood
            from many addresses cannot exhaust memory.
    """

    max_failures: int = 5
    first_lock_s: float = 2.0
    max_lock_s: float = 900.0
    forget_after_s: float = 3600.0
    max_clients: int = 10_000

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError(f"max_failures must be >= 1, got {self.max_failures}")
        if not self.first_lock_s > 0:
            raise ValueError(f"first_lock_s must be > 0, got {self.first_lock_s}")
        if self.max_lock_s < self.first_lock_s:
            raise ValueError(f"max_lock_s must be >= first_lock_s ({self.first_lock_s:g}), got {self.max_lock_s:g}")
        if not self.forget_after_s >= self.max_lock_s:
            raise ValueError(f"forget_after_s must be >= max_lock_s ({self.max_lock_s:g}), got {self.forget_after_s:g}")
        if self.max_clients < 1:
            raise ValueError(f"max_clients must be >= 1, got {self.max_clients}")


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginBackoff:
    """Failed logins per client address, and how long each must wait before the next try.

    Every attempt counts as a failure from the moment it starts (:meth:`begin`) until it is known
    to have succeeded (:meth:`end`), so guesses sent in parallel are limited as sequential ones.
    Not thread-safe: the server calls it from its one event loop.
    """

    def __init__(self, limits: LoginLimits | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or LoginLimits()
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def begin(self, client: str) -> float:
        """Seconds ``client`` must still wait (0: the attempt may go ahead, and is counted)."""
        now = self._clock()
        record = self._records.get(client)
        if record is not None and now - record.last > self.limits.forget_after_s:
            record = None
            del self._records[client]
        if record is not None and record.locked_until > now:
            return record.locked_until - now
        if record is None:
            record = self._remember(client)
        self._records.move_to_end(client)
        record.failures += 1
        record.last = now
        extra = record.failures - self.limits.max_failures
        if extra >= 0:
            record.locked_until = now + min(self.limits.max_lock_s, self.limits.first_lock_s * 2.0 ** min(extra, 64))
        return 0.0

    def end(self, client: str, ok: bool) -> None:
        """The attempt's outcome: a success clears the address's record, a failure stays counted."""
        if ok:
            self._records.pop(client, None)

    def _remember(self, client: str) -> _Record:
        while len(self._records) >= self.limits.max_clients:
            self._records.popitem(last=False)  # the address that tried least recently
        record = self._records[client] = _Record()
        return record


class AccessGuard:
    """ASGI middleware: login required, login backoff, no server paths in errors (see the module).

    Without a login on the Gradio app it wraps (``auth`` is None) it only rewrites error answers.

    Args:
        app: The ASGI app inside (the rest of Gradio's FastAPI stack).
        limits: The login backoff's limits.
    """

    def __init__(self, app: Any, limits: LoginLimits | None = None) -> None:
        self.app = app
        self.backoff = LoginBackoff(limits)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        gradio_app = scope.get("app")
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if getattr(gradio_app, "auth", None) is None:  # no login: only the error answers are rewritten
            await self.app(scope, receive, _without_paths(send) if scope["type"] == "http" else send)
            return
        path = _route_path(scope)
        if scope["type"] == "http" and scope["method"] == "POST" and path in LOGIN_PATHS:
            await self._login(scope, receive, send)
            return
        logged_in = _logged_in(scope, gradio_app)
        if not _is_public(path) and not logged_in:
            await _refuse(scope, send, 401, "Not authenticated: log in first.")
            return
        if scope["type"] == "http":
            send = _without_paths(send)
            if path == "/" and not logged_in:
                send = _without_api_description(send)
        await self.app(scope, receive, send)

    async def _login(self, scope: dict, receive: Callable, send: Callable) -> None:
        client = (scope.get("client") or ("unknown",))[0]
        wait = self.backoff.begin(client)
        if wait > 0:
            seconds = math.ceil(wait)
            await _refuse(scope, send, 429, f"Too many failed logins from this address; try again in {seconds} s.",
                          headers=[(b"retry-after", str(seconds).encode())])
            return
        status = 0

        async def watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _without_paths(watch))
        finally:
            self.backoff.end(client, ok=200 <= status < 300)


def _route_path(scope: dict) -> str:
    path = scope.get("path", "/")
    root = scope.get("root_path", "")
    return path[len(root):] or "/" if root and path.startswith(root) else path


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _logged_in(scope: dict, gradio_app: Any) -> bool:
    """True when the request carries a login cookie Gradio issued (and has not logged out)."""
    from starlette.requests import HTTPConnection

    cookies = HTTPConnection(scope).cookies
    cookie_id = getattr(gradio_app, "cookie_id", "")
    tokens = getattr(gradio_app, "tokens", {})
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        token = cookies.get(name)
        if token and token in tokens:
            return True
    return False


async def _refuse(scope: dict, send: Callable, status: int, detail: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # policy violation
        return
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _without_paths(send: Callable) -> Callable:
    """``send`` with the text bodies of error answers (status >= 400) rewritten by :func:`hide_paths`."""
    return _rewriting(send, lambda start: start["status"] >= 400 and _is_text(start), hide_paths)


def _without_api_description(send: Callable) -> Callable:
    """``send`` with the login page's embedded API description (endpoint names, parameters) left out.

    Gradio embeds it in ``/`` for everyone; the page only reads it once logged in (the login form
    needs none of it), and without it the page would ask ``/gradio_api/info``, which needs the login.
    """
    return _rewriting(send, lambda start: start["status"] == 200 and _is_text(start),
                      lambda html: _API_DESCRIPTION.sub(r"\1null\2", html))


def _rewriting(send: Callable, select: Callable[[dict], bool], change: Callable[[str], str]) -> Callable:
    """``send`` with the bodies of the answers ``select`` picks passed through ``change`` (text).

    A body bigger than :data:`_MAX_REWRITTEN_BODY` is passed on as it is rather than held.
    """
    held: dict[str, Any] = {}

    async def rewrite(message: dict) -> None:
        if message["type"] == "http.response.start" and select(message):
            held["start"], held["body"] = message, b""
            return
        if "start" not in held or message["type"] != "http.response.body":
            await send(message)
            return
        held["body"] += message.get("body", b"")
        more = message.get("more_body", False)
        if more and len(held["body"]) <= _MAX_REWRITTEN_BODY:
            return
        start, body = held.pop("start"), held.pop("body")
        if not more:  # the whole body is here: rewrite it and say its new length
            body = change(body.decode("utf-8", errors="replace")).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            start = {**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": more})

    return rewrite


def _is_text(start: dict) -> bool:
    content_type = dict((k.lower(), v) for k, v in start.get("headers", [])).get(b"content-type", b"")
    return content_type.startswith((b"application/json", b"text/"))

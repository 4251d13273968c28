"""Serving the web UI: where it listens, who may log in, and loading the models once.

Safe by default: the page binds to loopback (127.0.0.1) so only this machine can open it, no
public share link is made unless asked for, and Gradio's analytics stay off. ``--host 0.0.0.0``
opens it to the network; pair that with ``--auth``: then every route but the login page needs the
login, wrong passwords back off per client address, and error answers name no server paths
(:mod:`ui.access`). The password is never printed or logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ui  # noqa: F401  (Gradio analytics off before gradio is imported)
from ui.access import AccessGuard, LoginLimits
from ui.app import CSS, DEFAULT_MAX_UPLOAD_MB, AppConfig, build_app

logger = logging.getLogger("ui.server")


@dataclass(frozen=True)
class ServeConfig:
    """How ``agent serve`` listens.

    Args:
        host: Interface to bind (``127.0.0.1`` keeps the page on this machine).
        port: TCP port.
        share: Ask Gradio for a temporary public ``*.gradio.live`` link (needs internet).
        auth: ``user:password`` a browser must log in with; None for no login.
        max_upload_mb: Largest upload accepted; bigger ones are refused with a message on the page.
        login_limits: With ``auth``: how many wrong logins an address may make before it must wait.
    """

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: str | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    login_limits: LoginLimits = LoginLimits()

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ValueError("host must not be empty (127.0.0.1 keeps the page on this machine)")
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        if self.auth is not None:
            user, sep, password = self.auth.partition(":")
            if not sep or not user.strip() or not password:
                # Never echo the value: it may hold a password with a typo.
                raise ValueError("--auth must look like user:password (both parts non-empty)")
        if not self.max_upload_mb > 0:
            raise ValueError(f"max upload size must be > 0 MB, got {self.max_upload_mb}")

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for Gradio's login page, or None."""
        if self.auth is None:
            return None
        user, _, password = self.auth.partition(":")
        return user.strip(), password

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __repr__(self) -> str:  # keeps the password out of logs and tracebacks
        auth = None if self.auth is None else f"{self.credentials[0]}:***"
        return (f"ServeConfig(host={self.host!r}, port={self.port}, share={self.share}, auth={auth!r}, "
                f"max_upload_mb={self.max_upload_mb})")


def check_port(host: str, port: int) -> None:
    """Raise a one-line ``ValueError`` when ``host:port`` cannot be bound (before models load)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a server that just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ValueError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                             "is another server running there? pick another with --port") from None


def start(app: Any, config: ServeConfig) -> str:
    """Launch ``app`` in background threads and return its local URL (tests call this directly)."""
    from starlette.middleware import Middleware

    check_port(config.host, config.port)
    _, local_url, share_url = app.launch(
        server_name=config.host,
        server_port=config.port,
        share=config.share,
        auth=config.credentials,
        auth_message="Log in with the user name and password given to `agent serve --auth`.",
        max_file_size=int(config.max_upload_mb * 1024 * 1024),
        prevent_thread_lock=True,
        inbrowser=False,
        quiet=True,
        show_error=False,  # handlers already turn failures into sentences; no tracebacks in the page
        ssr_mode=False,  # server-side rendering needs Node; the plain Python server is enough here
        css=CSS,
        # With a login: every route but the login page needs it, wrong logins back off, and error
        # answers show no server paths (ui/access.py). Gradio checks the login on some routes only.
        app_kwargs={"middleware": [Middleware(AccessGuard, limits=config.login_limits)]},
    )
    return share_url or local_url


def build_and_start(assistant: Any, app_config: AppConfig, config: ServeConfig) -> tuple[Any, str]:
    """Build the page around ``assistant`` and start serving it in background threads.

    Returns:
        The running app (``app.close()`` stops it) and its URL.
    """

    async def inside_a_loop() -> tuple[Any, str]:
        app = build_app(assistant, app_config)
        return app, start(app, config)

    # Gradio makes a fresh asyncio event loop for its locks whenever none is running and never
    # closes it (four per page); building and launching inside one short-lived loop leaves none
    # behind. Its locks bind to the server's own loop on first use, so closing this one is safe.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(inside_a_loop())
    # Already inside a running loop (a notebook, Playwright's sync API): same, on a helper thread.
    with ThreadPoolExecutor(max_workers=1) as helper:
        return helper.submit(lambda: asyncio.run(inside_a_loop())).result()


def serve(
    config: ServeConfig,
    load_assistant: Callable[[Callable[[str], None]], Any],
    app_config: AppConfig | None = None,
    say: Callable[[str], None] = print,
    *,
    block: bool = True,
) -> Any:
    """Load the models once, build the page, and serve it until interrupted.

    Args:
        config: Where to listen and who may log in.
        load_assistant: Loads the assistant, reporting progress through the callable it is given.
        app_config: Feedback file, monitor database and upload limit for the page.
        say: Where progress and the URL are printed.
        block: Serve until Ctrl+C; False returns the running app at once (close it yourself).
    """
    check_port(config.host, config.port)  # fail in a second, not after the models have loaded
    if not config.is_loopback and config.credentials is None:
        say(f"warning: listening on {config.host} without --auth: anyone who can reach this machine can use the page")
    assistant = load_assistant(say)
    say("… building the web page (drawing the model circuits)")
    app_config = app_config or AppConfig(max_upload_mb=config.max_upload_mb)
    app, url = build_and_start(assistant, app_config, config)
    login = f" (log in as {config.credentials[0]})" if config.credentials else ""
    say(f"qagent web UI running at {url}{login}; press Ctrl+C to stop")
    if not block:
        return app
    try:
        app.block_thread()
    finally:
        app.close()

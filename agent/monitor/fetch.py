"""Fetch one feed over HTTP(S): a conditional GET with a deadline, a size cap and checked redirects.

Feeds are untrusted and so are the servers: a body over ``max_bytes`` (after decompression, so a
small gzip bomb is refused too) is abandoned as it streams in, a server that trickles bytes is cut
off at ``timeout`` seconds for the whole exchange, and a redirect is followed only to another
http(s) URL, at most ``max_redirects`` times. The last ETag and Last-Modified are sent back as
If-None-Match / If-Modified-Since; a ``304`` answer means nothing new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

SCHEMES = ("http", "https")
MAX_RESPONSE_BYTES = 20 << 20  # far above any real RSS/Atom page, small enough to hold in memory
_REDIRECTS = (301, 302, 303, 307, 308)
_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, "
           "application/x-ndjson, application/json;q=0.8, text/csv;q=0.8, */*;q=0.5")


class FetchError(RuntimeError):
    """A feed URL could not be fetched (refused, timed out, too big, an HTTP error status)."""


@dataclass(frozen=True)
class FetchConfig:
    """How feeds are fetched.

    Attributes:
        timeout: Seconds for the whole exchange, redirects and body included.
        max_bytes: Largest body accepted (bytes, after decompression).
        max_redirects: Redirects followed before giving up.
        user_agent: Sent with every request.
    """

    timeout: float = 30.0
    max_bytes: int = MAX_RESPONSE_BYTES
    max_redirects: int = 5
    user_agent: str = "qagent-monitor/1"

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {self.max_bytes}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {self.max_redirects}")


@dataclass(frozen=True)
class Fetched:
    """One answer: ``status`` 200 with ``body``, or 304 (not modified, empty body)."""

    status: int
    body: bytes
    url: str  # after redirects
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""


def is_url(source: str) -> bool:
    """Whether ``source`` names a URL (any scheme) rather than a local path."""
    return "://" in source


def fetch(url: str, *, etag: str | None = None, last_modified: str | None = None,
          config: FetchConfig | None = None, client: httpx.Client | None = None) -> Fetched:
    """GET ``url`` conditionally.

    Args:
        url: An http(s) URL.
        etag: The ETag of the last body read (sent as If-None-Match).
        last_modified: Its Last-Modified (sent as If-Modified-Since).
        config: Timeout, size cap, redirects.
        client: An httpx client to reuse (connections are kept between polls); one is made if None.

    Raises:
        FetchError: Refused scheme or redirect, too many redirects, timeout, body over the cap,
            an error status, or a connection failure.
    """
    config = config or FetchConfig()
    owned = client is None
    client = client or httpx.Client()
    headers = {"User-Agent": config.user_agent, "Accept": _ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + config.timeout
    current = url
    try:
        for _ in range(config.max_redirects + 1):
            scheme = httpx.URL(current).scheme
            if scheme not in SCHEMES:
                where = "" if current == url else f" (redirected from {url})"
                raise FetchError(f"{current[:200]}{where}: only http and https URLs are fetched, not {scheme or 'this'}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpx.ReadTimeout("deadline passed")
            with client.stream("GET", current, headers=headers, timeout=httpx.Timeout(left),
                               follow_redirects=False) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    current = str(response.url.join(response.headers["location"]))
                    continue
                if response.status_code == 304:
                    return Fetched(304, b"", current, etag, last_modified)
                if response.status_code != 200:
                    raise FetchError(f"{current}: HTTP {response.status_code} {response.reason_phrase}".rstrip())
                return Fetched(200, _read_body(response, current, config, deadline), current,
                               response.headers.get("etag"), response.headers.get("last-modified"),
                               response.headers.get("content-type", ""))
        raise FetchError(f"{url}: more than {config.max_redirects} redirects")
    except httpx.TimeoutException:
        raise FetchError(f"{url}: no complete answer within {config.timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        if owned:
            client.close()


def _read_body(response: httpx.Response, url: str, config: FetchConfig, deadline: float) -> bytes:
    too_big = f"{url}: the response is over the {config.max_bytes:,}-byte limit (--max-bytes); refused"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.max_bytes:
        raise FetchError(too_big)
    body = bytearray()
    for part in response.iter_bytes():
        body += part
        if len(body) > config.max_bytes:
            raise FetchError(too_big)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("deadline passed")
    return bytes(body)

"""Send raised alerts out: a webhook (POST JSON, retried) and/or lines on standard output.

A webhook that keeps failing never stops a run: every attempt's outcome is recorded in the
``notifications`` table (status ``sent`` or ``failed``, attempts, last error), so a risk team can
see what did not go out and resend it. The URL is never printed with its query string, which
often carries a token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.monitor.alerts import Alert
from agent.monitor.store import MonitorStore, now_iso


@dataclass(frozen=True)
class WebhookConfig:
    """Where and how to POST alerts.

    Attributes:
        url: ``http://`` or ``https://`` endpoint; each alert is POSTed as one JSON object.
        attempts: Tries per alert (1 + retries).
        backoff: Seconds before the first retry, doubled after each failure.
        timeout: Seconds to wait for each response.
    """

    url: str
    attempts: int = 3
    backoff: float = 0.5
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"webhook must be an http:// or https:// URL, got {safe_url(self.url)!r}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.backoff < 0 or self.timeout <= 0:
            raise ValueError("backoff must be >= 0 and timeout > 0")


def safe_url(url: str) -> str:
    """The URL without query, fragment or user info (where secrets live), for logs and the database."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0]


def post_json(config: WebhookConfig, payload: dict, sleep: Callable[[float], None] = time.sleep) -> tuple[bool, int, str]:
    """POST ``payload``; retry on connection errors and 5xx/429 answers.

    Returns:
        (delivered, attempts made, last error or "").
    """
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    error = ""
    for attempt in range(1, config.attempts + 1):
        request = urllib.request.Request(config.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "qagent-monitor"})
        try:
            with urllib.request.urlopen(request, timeout=config.timeout) as response:  # noqa: S310 - scheme checked
                if 200 <= response.status < 300:
                    return True, attempt, ""
                error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                return False, attempt, error  # the receiver refuses this request; retrying will not help
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = f"{type(reason).__name__}: {reason}"
        if attempt < config.attempts:
            sleep(config.backoff * 2 ** (attempt - 1))
    return False, config.attempts, error


def alert_payload(alert: Alert) -> dict:
    """The JSON body a webhook receives."""
    return {"type": "qagent.monitor.alert", "text": alert.describe(), **alert.to_dict()}


def notify(
    store: MonitorStore,
    alerts: Sequence[Alert],
    *,
    webhook: WebhookConfig | None = None,
    stdout: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Send each alert to the configured outputs and record the outcome.

    Args:
        store: Where outcomes are recorded.
        alerts: Newly raised alerts.
        webhook: POST each alert here (None: no webhook).
        stdout: Called with one line per alert (None: no lines).

    Returns:
        ``{"sent": n, "failed": m}`` for the webhook.
    """
    counts = {"sent": 0, "failed": 0}
    for alert in alerts:
        if stdout is not None:
            stdout(alert.describe())
        if webhook is None:
            continue
        ok, attempts, error = post_json(webhook, alert_payload(alert))
        counts["sent" if ok else "failed"] += 1
        with store.transaction() as db:
            db.execute("INSERT INTO notifications (alert_id, channel, target, status, attempts, error, at) "
                       "VALUES (?,?,?,?,?,?,?)",
                       (alert.id, "webhook", safe_url(webhook.url), "sent" if ok else "failed", attempts, error, now_iso()))
    return counts

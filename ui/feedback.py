"""Thumbs up/down on the assistant's replies, kept in a local JSONL file for later review.

One line per rating: when, which browser session, up or down, what the customer asked, and the
whole reply as the assistant gave it (route, intent, sources...), so a reviewer can see why a
reply was liked or not without re-running anything. The file lives on this machine only
(``$QAGENT_HOME/feedback.jsonl`` by default); nothing is sent anywhere.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FILE_NAME = "feedback.jsonl"


def default_feedback_path() -> Path:
    """``$QAGENT_HOME/feedback.jsonl`` (``~/.qagent/feedback.jsonl`` when ``QAGENT_HOME`` is unset)."""
    from agent.llm import qagent_home  # imported here: it pulls in langchain

    return qagent_home().expanduser() / FILE_NAME


class FeedbackLog:
    """Appends ratings to a JSONL file; safe to share between the server's worker threads.

    Args:
        path: The JSONL file (created with its folder on the first rating).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_feedback_path()
        self._lock = threading.Lock()

    def record(
        self, *, liked: bool, message: str, reply: dict[str, Any], session_id: str, turn: int
    ) -> dict[str, Any]:
        """Append one rating and return the record written.

        Args:
            liked: True for thumbs up, False for thumbs down.
            message: The customer's message the reply answered.
            reply: The reply as a plain dict (``Reply.to_dict()``).
            session_id: The browser session's conversation id.
            turn: Which reply of the conversation (0 is the first).
        """
        record = {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "session": session_id,
            "turn": turn,
            "rating": "up" if liked else "down",
            "message": message,
            "reply": reply,
        }
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write of a whole line under the lock: concurrent sessions never interleave lines.
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
        return record

    def read(self) -> list[dict[str, Any]]:
        """All ratings so far, oldest first (an absent file means none)."""
        if not self.path.is_file():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

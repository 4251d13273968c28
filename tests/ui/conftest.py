"""Fixtures for the web UI tests: a scripted assistant, free ports, a launched app."""

from __future__ import annotations

import os
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ui  # noqa: F401  (Gradio analytics off before gradio is imported)


class ScriptedAssistant:
    """Stands in for :class:`agent.assistant.Assistant` in unit tests (same ``stream``/``reset``).

    Replies "Reply N of this conversation." word by word, N counting the session's messages, so a
    test sees which conversation a reply belongs to. Messages containing ``guard`` end with a
    ``replaced`` event, ``boom`` raises, ``Anna`` yields a person entity.
    """

    def __init__(self) -> None:
        self.turns: dict[str, int] = defaultdict(int)
        self.resets: list[str] = []
        self._lock = threading.Lock()

    def stream(self, message: str, session_id: str = "default") -> Iterator:
        from agent.assistant import AssistantEvent, Reply

        if "boom" in message:
            raise RuntimeError("the model fell over")
        with self._lock:
            self.turns[session_id] += 1
            n = self.turns[session_id]
        text = f"Reply {n} of this conversation."
        for word in text.split(" "):
            yield AssistantEvent("token", word + " ")
        guard = "guard" in message
        if guard:
            text = "Checked answer from the help pages."
            yield AssistantEvent("replaced", text)
        start = message.find("Anna")
        entities = [] if start < 0 else [{"type": "person_name", "text": "Anna", "start": start, "end": start + 4, "score": 0.9}]
        reply = Reply(
            text=text, route="answer", reason="intent confident", intent="card_arrival", confidence=0.93,
            entities=entities, sentiment={"label": "neutral", "score": 0.8},
            sources=[{"id": "card-arrival-001", "title": "My card hasn't arrived yet. What should I do?",
                      "score": 0.81, "text": "See Cards > Track delivery <b>now</b>.", "used": True}],
            timings={"total_s": 0.01}, guard_fired=guard, session_id=session_id,
        )
        yield AssistantEvent("done", text, reply)

    def reset(self, session_id: str) -> None:
        with self._lock:
            self.turns.pop(session_id, None)
            self.resets.append(session_id)


@pytest.fixture()
def scripted_assistant() -> ScriptedAssistant:
    return ScriptedAssistant()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def free_port() -> int:
    """A loopback TCP port nothing listens on right now (the OS picks it)."""
    return _free_port()


@dataclass
class Served:
    """A running app: its URL, the assistant behind it, the folder its files go to, the Gradio app."""

    url: str
    assistant: Any
    folder: Path
    app: Any = None


@contextmanager
def serving(assistant: Any, folder: Path, max_upload_mb: float = 1.0, auth: str | None = None) -> Iterator[Served]:
    """Build the page around ``assistant`` and serve it on a free loopback port until the block ends."""
    from ui.app import AppConfig
    from ui.server import ServeConfig, build_and_start

    config = AppConfig(feedback_path=folder / "feedback.jsonl", data_dir=folder / "monitor", max_upload_mb=max_upload_mb)
    app, url = build_and_start(assistant, config, ServeConfig(port=_free_port(), max_upload_mb=max_upload_mb, auth=auth))
    try:
        yield Served(url, assistant, folder, app)
    finally:
        app.close()


@pytest.fixture()
def serve_page():
    """:func:`serving`, for tests that need a page with their own settings (e.g. a login)."""
    return serving


@pytest.fixture(scope="module")
def scripted_app(tmp_path_factory) -> Iterator[Served]:
    """The page around a :class:`ScriptedAssistant`, served for one test module."""
    with serving(ScriptedAssistant(), tmp_path_factory.mktemp("scripted-ui")) as served:
        yield served


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory) -> Iterator[Served]:
    """The scripted page behind the login ``alice:s3cret``, served for one test module."""
    with serving(ScriptedAssistant(), tmp_path_factory.mktemp("guarded-ui"), auth="alice:s3cret") as served:
        yield served


@pytest.fixture(scope="session")
def real_app(tmp_path_factory) -> Iterator[Served]:
    """The page around the real assistant (shipped models, knowledge base, SmolLM2), loaded once,
    keeping conversations in a store of its own (so the page has a Desk)."""
    from agent.assistant import Assistant, AssistantSettings

    folder = tmp_path_factory.mktemp("real-ui")
    assistant = Assistant.load(AssistantSettings(llm="local", store=str(folder / "assistant.db")))
    with serving(assistant, folder) as served:
        yield served
    assistant.store.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser screenshots are kept for people to look at (``$QAGENT_TEST_ARTIFACTS`` or test-artifacts/ui)."""
    root = Path(os.environ.get("QAGENT_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
    folder = root / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder

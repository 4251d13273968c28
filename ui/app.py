"""The web UI: one ``gr.Blocks`` page with Chat, Desk, Monitor and Models tabs.

Usage::

    from agent.assistant import Assistant
    from ui.app import build_app
    from ui.server import ServeConfig, start

    app = build_app(Assistant.load())
    start(app, ServeConfig(port=7860))      # or `agent serve`

No business logic lives here: each tab only calls into the assistant, its conversation store, the
news monitor and the checkpoints, and formats what they return (see ``ui/chat.py``, ``ui/desk.py``,
``ui/monitor.py``, ``ui/models.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ui  # noqa: F401  (switches Gradio's analytics off before gradio is imported)
from ui.feedback import FeedbackLog
from ui.monitor import MONITOR_MODELS

TITLE = "qagent: banking assistant and news monitor"
# Layout only: keep the side panel's source blocks readable and the circuit images unstretched.
CSS = """
.qa-source summary { cursor: pointer; }
.qa-source p { margin: 0.3em 0 0.8em 1em; white-space: pre-wrap; }
.qa-model { margin-bottom: 1.5em; }
"""
DEFAULT_MAX_UPLOAD_MB = 20.0


@dataclass(frozen=True)
class AppConfig:
    """What the page is built with besides the assistant.

    Args:
        feedback_path: JSONL file for thumbs up/down (default ``$QAGENT_HOME/feedback.jsonl``).
        monitor_db: A news-monitor database to show when the Monitor tab opens (None: pick one on the page).
        data_dir: Where feeds uploaded on the Monitor tab are scored into databases (default:
            ``$QAGENT_HOME/ui/monitor``).
        max_upload_mb: Largest file the page accepts; bigger uploads get a message, not a crash.
        monitor_models: What scores uploaded feeds: ``news``, the monitor's own models (the same
            scores as ``agent monitor score``; loaded at the first upload), or ``assistant``, the
            assistant's loaded models (no extra memory, but two encoder passes a headline and a
            sentiment model made for chat, less accurate on news).
    """

    feedback_path: Path | None = None
    monitor_db: Path | None = None
    data_dir: Path | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    monitor_models: str = "news"

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ValueError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.monitor_models not in MONITOR_MODELS:
            raise ValueError(f"monitor_models must be one of {', '.join(MONITOR_MODELS)}; got {self.monitor_models!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def build_app(assistant: Any, config: AppConfig | None = None) -> Any:
    """Build the page around a loaded assistant.

    Args:
        assistant: :class:`agent.assistant.Assistant` (or anything with ``stream`` and ``reset``);
            its loaded models also score feeds on the Monitor tab and are shown on the Models tab,
            and its conversation store (``assistant.store``; None: ``--store none``) is the Desk's.
        config: Feedback file, monitor database and folder, upload limit.

    Returns:
        A ``gr.Blocks`` app, not yet launched (see :func:`ui.server.start`).
    """
    import gradio as gr

    from ui.chat import build_chat_tab
    from ui.desk import build_desk_tab
    from ui.models import build_models_tab
    from ui.monitor import build_monitor_tab

    config = config or AppConfig()
    store = getattr(assistant, "store", None)  # where handoffs become cases a person can take
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"## {TITLE}")
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                build_chat_tab(assistant, FeedbackLog(config.feedback_path), store)
            with gr.Tab("Desk", id="desk") as desk_tab:
                build_desk_tab(store, desk_tab, tabs)
            with gr.Tab("Monitor", id="monitor") as monitor_tab:
                build_monitor_tab(config, assistant, monitor_tab)
            with gr.Tab("Models", id="models"):
                build_models_tab(assistant)
    return app

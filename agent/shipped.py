"""What qagent ships in ``agent/assets``: default models, the banking knowledge base, router settings.

The layers below the app (``finetune``, ``retrieval``) load whatever path they are given and know
nothing of these files; the commands and the assistant pass them in. ``default`` on a command line
names the shipped model of the task at hand (:func:`model_path`).
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
MODELS = ASSETS / "models"

INTENTS_MODEL = MODELS / "intents"
SENTIMENT_MODEL = MODELS / "sentiment"  # the most accurate: an ensemble of two LoRA models
NER_MODEL = MODELS / "ner"
# The assistant's sentiment model: a hybrid head on the plain encoder's features, so it reads the
# pass retrieval needs anyway and costs no pass of its own; SENTIMENT_MODEL would add two passes.
CHAT_SENTIMENT_MODEL = MODELS / "chat-sentiment"
# The news monitor's pair, trained together on one LoRA adapter: one encoder pass a headline for both.
NEWS_SENTIMENT_MODEL = MODELS / "news-sentiment"
NEWS_NER_MODEL = MODELS / "news-ner"
# The monitor's topic classifier reads the pass of that same adapter (no encoder pass of its own).
NEWS_TOPICS_MODEL = MODELS / "news-topics"

KNOWLEDGE_BASE = ASSETS / "knowledge" / "banking.jsonl"
ROUTER_SETTINGS = ASSETS / "router.json"

DEFAULT_MODELS = {"intents": INTENTS_MODEL, "sentiment": SENTIMENT_MODEL, "ner": NER_MODEL, "topics": NEWS_TOPICS_MODEL}
# The other shipped models, by the part of the product that uses them: ``monitor`` (the news
# monitor's pair) and ``chat`` (the assistant's sentiment model).
NAMED_MODELS = {
    ("sentiment", "monitor"): NEWS_SENTIMENT_MODEL,
    ("ner", "monitor"): NEWS_NER_MODEL,
    ("topics", "monitor"): NEWS_TOPICS_MODEL,
    ("sentiment", "chat"): CHAT_SENTIMENT_MODEL,
}


def model_path(model: str | Path | None, task: str) -> Path:
    """The checkpoint folder ``model`` names: ``None`` or ``"default"`` is the shipped model of ``task``;
    ``"monitor"`` the news monitor's model of ``task``, ``"chat"`` the assistant's sentiment model."""
    if model is None or str(model) == "default":
        if task not in DEFAULT_MODELS:
            raise ValueError(f"no shipped model for task {task!r}; have {', '.join(DEFAULT_MODELS)}")
        return DEFAULT_MODELS[task]
    if (task, str(model)) in NAMED_MODELS:
        return NAMED_MODELS[(task, str(model))]
    if str(model) in {name for _, name in NAMED_MODELS} and not Path(model).exists():
        have = ", ".join(["default"] + [name for kind, name in NAMED_MODELS if kind == task])
        raise ValueError(f"no shipped {model!r} model for task {task!r}; have {have}, or pass a model folder")
    return Path(model)

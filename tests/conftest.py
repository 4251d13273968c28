"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_runs_dir(tmp_path_factory):
    """Run records (every `agent finetune`/`agent eval` makes one) never go to ~/.qagent, not even
    from session- or module-scoped fixtures that run commands."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QAGENT_RUNS_DIR", str(tmp_path_factory.mktemp("session-runs")))
        yield


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path_factory, monkeypatch) -> Path:
    """…and each test starts with a registry of its own."""
    path = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("QAGENT_RUNS_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared reference data folder (``$QAGENT_DATA_DIR`` or ``../shared/data``); skips when absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    path = Path(os.environ.get("QAGENT_DATA_DIR") or default)
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}; set QAGENT_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def base_encoder():
    """The default all-MiniLM-L6-v2 encoder, loaded once for the whole test session."""
    from finetune.models.encoder import Encoder, EncoderConfig

    return Encoder.load(EncoderConfig())


@pytest.fixture()
def encoder(base_encoder):
    """A private copy, so tests that train or add adapters leave the session model alone."""
    return copy.deepcopy(base_encoder)


@pytest.fixture()
def intents_csv(tmp_path, monkeypatch) -> Path:
    """A small intents CSV (tests/text_data.py); the feature cache goes inside the test folder."""
    from text_data import write_csv

    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    path = tmp_path / "intents.csv"
    write_csv(path)
    return path


@pytest.fixture(scope="session")
def tiny_entities_dir(tmp_path_factory) -> Path:
    """A folder of train/validation/test JSONL files with entity spans (amounts, names, dates)."""
    import json

    names, amounts, dates = ["Anna", "Tom", "Maria", "John"], ["20 pounds", "5 euros", "100 dollars"], ["tomorrow", "on Monday", "next week"]
    verbs = ["send", "transfer", "pay", "wire"]
    rows = []
    for i in range(36):
        parts = [(verbs[i % 4], None), (amounts[i % 3], "amount_of_money"), ("to", None),
                 (names[(i // 3) % 4], "person_name"), (dates[(i // 2) % 3], "date")]
        text, spans = "", []
        for piece, label in parts:
            text += (" " if text else "")
            if label:
                spans.append({"start": len(text), "end": len(text) + len(piece), "label": label})
            text += piece
        rows.append({"text": text, "spans": spans})
    folder = tmp_path_factory.mktemp("entities")
    for split, part in (("train", rows[:24]), ("validation", rows[24:30]), ("test", rows[30:])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_joint(tiny_entities_dir, tmp_path_factory):
    """A sentiment classifier and an entity tagger trained together on one LoRA adapter (tiny data)."""
    from finetune.models.lora import LoraSettings
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.training.joint import JointSpec, SentenceTask, train_joint
    from finetune.training.trainer import TrainingArguments

    texts = {"positive": ["shares soar after record profit", "company beats estimates and raises guidance",
                          "stock rallies on strong sales"],
             "negative": ["shares plunge after profit warning", "company misses estimates and cuts guidance",
                          "stock slumps on weak sales"],
             "neutral": ["annual meeting set for May", "company to report results on Thursday", "board names new chair"]}
    rows = [TextExample(t, label) for label, some in texts.items() for t in some]
    sentiment = TextDataset("tiny-sentiment", sorted(texts), rows * 4, rows, rows)
    spec = JointSpec(tagger_head=HeadConfig(kind="linear"), lora=LoraSettings(r=2, alpha=4), tagging_repeat=2)
    args = TrainingArguments(epochs=6, batch_size=16, lr=1e-2, patience=6, progress=False)
    out = tmp_path_factory.mktemp("joint")
    task = SentenceTask("sentiment", sentiment, out / "sentiment", HeadConfig(kind="linear"))
    return train_joint([task], load_entities(str(tiny_entities_dir)), spec, args, Encoder.load(), out / "ner")

"""The default knowledge-base index: built once, cached by content, rebuilt when the base changes."""

from __future__ import annotations

import shutil

import pytest

from agent.knowledge import default_index_dir, load_index
from agent.shipped import KNOWLEDGE_BASE


@pytest.mark.slow
def test_index_is_cached_by_knowledge_base_content(tmp_path, monkeypatch, base_encoder):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    kb = tmp_path / "kb.jsonl"
    shutil.copy(KNOWLEDGE_BASE, kb)
    first = load_index(base_encoder, kb=kb)
    cached = default_index_dir(kb, base_encoder)
    assert (cached / "index.faiss").is_file() and len(first) == len(load_index(base_encoder, kb=kb))
    assert first.search("Where is my card?", k=1, intent="card_arrival")[0].matched_intent
    kb.write_text(kb.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert default_index_dir(kb, base_encoder) != cached
    assert len(load_index(base_encoder, kb=kb)) < len(first)


def test_missing_knowledge_base_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="knowledge base"):
        load_index(object(), kb=tmp_path / "none.jsonl")

"""FAISS index: build, save, load and search for real on disk; damaged or mismatched indexes refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.shipped import KNOWLEDGE_BASE
from retrieval.documents import Document, load_documents
from retrieval.index import DEFAULT_INTENT_BOOST, Index, RetrievalError, build_index

class TinyEncoder:
    """A stand-in encoder of another dimension (the Protocol's fake, for the mismatch check)."""

    dim = 8

    def encode(self, texts, *, progress=False):
        return np.ones((len(texts), self.dim), dtype=np.float32)


@pytest.fixture()
def index(small_index) -> Index:
    return small_index


@pytest.fixture()
def saved(small_index, tmp_path):
    return small_index.save(tmp_path / "idx")


def test_round_trip_on_disk_gives_the_same_hits(index, saved, base_encoder):
    assert sorted(p.name for p in saved.iterdir()) == ["docs.jsonl", "index.faiss", "meta.json"]
    meta = json.loads((saved / "meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == "qagent-index/1" and meta["dim"] == 384 and meta["count"] == 5
    assert meta["encoder"]["id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert set(meta["sha256"]) == {"index.faiss", "docs.jsonl"} and meta["source"] == "kb.jsonl"
    loaded = Index.load(saved, encoder=base_encoder)
    assert loaded.docs == index.docs
    before = index.search("I am still waiting for my new card to be delivered", k=3)
    after = loaded.search("I am still waiting for my new card to be delivered", k=3)
    assert [h.doc.id for h in after] == [h.doc.id for h in before] and after[0].doc.id == "card-arrival"
    assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-6)
    assert after[0].vector_score > after[1].vector_score > 0 and not after[0].matched_intent


def test_intent_ranks_tagged_document_first_and_scores_show_the_boost(index):
    query = "I am still waiting for my new card to be delivered"
    plain = index.search(query, k=5)
    boosted = index.search(query, k=5, intent="pin_blocked")
    assert plain[0].doc.id == "card-arrival" and plain[-1].doc.id != "pin-blocked"
    assert boosted[0].doc.id == "pin-blocked" and boosted[0].matched_intent
    assert boosted[0].score == pytest.approx(boosted[0].vector_score + DEFAULT_INTENT_BOOST)
    assert [h.doc.id for h in boosted[1:]] == [h.doc.id for h in plain if h.doc.id != "pin-blocked"]
    # k=1 still finds the tagged document even when it is far down the vector ranking
    assert index.search(query, k=1, intent="terminate_account")[0].doc.id == "close-account"
    # an intent nobody serves, or no boost, leaves the vector ranking alone
    for hits in (index.search(query, k=5, intent="no_such_intent"), index.search(query, k=5, intent="pin_blocked", intent_boost=0)):
        assert [h.doc.id for h in hits] == [h.doc.id for h in plain] and not any(h.matched_intent for h in hits)


def test_embedding_and_batch_search_agree_with_text_search(index):
    queries = ["what rate do you use for currency exchange", "cancel my account please"]
    vectors = index.embed(queries)
    batch = index.search_batch(queries, k=2, intents=[None, "card_arrival"])
    assert [h.doc.id for h in batch[0]] == [h.doc.id for h in index.search(vectors[0], k=2)]
    assert batch[0][0].doc.id == "exchange-rate"
    assert [h.doc.id for h in batch[1]] == [h.doc.id for h in index.search(queries[1], k=2, intent="card_arrival")]
    assert len(index.search(queries[0], k=50)) == 5
    with pytest.raises(ValueError, match=r"shape \[N, 384\]"):
        index.search(np.ones(10))
    with pytest.raises(ValueError, match="k must be a positive int"):
        index.search(queries[0], k=0)


def test_loaded_without_encoder_searches_embeddings_only(index, saved):
    bare = Index.load(saved)
    vector = index.embed(["my pin is blocked"])[0]
    assert bare.search(vector, k=1)[0].doc.id == "pin-blocked"
    with pytest.raises(RetrievalError, match="loaded without an encoder; pass encoder="):
        bare.search("my pin is blocked")


@pytest.mark.parametrize("name", ["index.faiss", "docs.jsonl"])
def test_corrupted_or_edited_files_are_refused(saved, name):
    path = saved / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RetrievalError, match=rf"{name} does not match its checksum in meta\.json \(corrupted or edited\); "
                                             rf"rebuild it with: agent index build kb\.jsonl --out "):
        Index.load(saved)


def test_wrong_encoder_or_dimension_is_refused(saved, base_encoder):
    with pytest.raises(RetrievalError, match="holds 384-dim vectors but the encoder gives 8-dim ones.*agent index build"):
        Index.load(saved, encoder=TinyEncoder())
    meta_path = saved / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["encoder"]["id"] = "someone/else"
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(RetrievalError, match="was built with encoder 'someone/else', not 'sentence-transformers/all-MiniLM-L6-v2'"):
        Index.load(saved, encoder=base_encoder)
    meta["dim"] = 768
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(RetrievalError, match="meta.json says dim 768 and 5 documents, the files hold dim 384"):
        Index.load(saved)


def test_missing_or_foreign_directories_say_how_to_build(tmp_path, saved):
    with pytest.raises(RetrievalError, match="no index at .*; build one with: agent index build KB --out"):
        Index.load(tmp_path / "nowhere")
    with pytest.raises(RetrievalError, match="has no meta.json, so it is not a qagent index"):
        Index.load(tmp_path)
    (saved / "index.faiss").unlink()
    with pytest.raises(RetrievalError, match="index.faiss is missing; rebuild it"):
        Index.load(saved)
    (saved / "meta.json").write_text('{"format": "qagent-index/0"}', encoding="utf-8")
    with pytest.raises(RetrievalError, match="has index format 'qagent-index/0', this qagent reads 'qagent-index/1'"):
        Index.load(saved)


def test_empty_knowledge_base_is_refused(base_encoder):
    with pytest.raises(RetrievalError, match="zero documents"):
        build_index([], base_encoder)


@pytest.mark.slow
def test_default_knowledge_base_index_covers_every_intent(base_encoder, tmp_path):
    index = build_index(load_documents(KNOWLEDGE_BASE), base_encoder)
    loaded = Index.load(index.save(tmp_path / "kb"), encoder=base_encoder)
    assert len(loaded) == 98 and len(loaded.intents) == 77
    hits = loaded.search("I ordered a card over a week ago and it still has not come", k=3)
    assert any("card_arrival" in h.doc.intents for h in hits)


def test_checksums_detect_corruption_not_tampering_a_pinned_digest_does(saved):
    import hashlib

    from retrieval.index import index_digest

    digest = index_digest(saved)
    assert digest == hashlib.sha256((saved / "meta.json").read_bytes()).hexdigest()
    assert len(Index.load(saved, expect_sha256=digest)) == 5
    # An edited answer with its checksum recomputed passes the checksums: that is tampering, not corruption.
    docs = saved / "docs.jsonl"
    docs.write_text(docs.read_text(encoding="utf-8").replace("0.5% markup", "no markup"), encoding="utf-8")
    meta = json.loads((saved / "meta.json").read_text(encoding="utf-8"))
    meta["sha256"]["docs.jsonl"] = hashlib.sha256(docs.read_bytes()).hexdigest()
    (saved / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    assert any("no markup" in d.text for d in Index.load(saved).docs)
    with pytest.raises(RetrievalError, match=rf"index {saved} is not the pinned one: its meta\.json hashes to"):
        Index.load(saved, expect_sha256=digest)


def test_documents_with_unicode_line_separators_survive_save_and_load(base_encoder, tmp_path):
    # docs.jsonl is written with ensure_ascii=False, which keeps U+2028 and U+0085 raw.
    docs = [Document("fees", "Fees\u2028and limits", "No fee\x85 up to 200 a month."),
            Document("cards", "Cards", "Cards arrive in 3 days.")]
    saved = build_index(docs, base_encoder, source="kb.jsonl").save(tmp_path / "idx")
    assert Index.load(saved, encoder=base_encoder).docs == build_index(docs, base_encoder).docs

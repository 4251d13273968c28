import logging

import numpy as np
import pytest
import torch

from finetune.data.loaders import load_entities
from finetune.models.heads import HeadConfig
from finetune.models.tag_transitions import constrained_decode
from finetune.models.tagger import EntityTagger, bio_tags, decode_entities
from finetune.data.tagging import entity_f1, recorded_data_warnings
from finetune.training.tagger import TaggerSpec, train_tagger
from finetune.data.tagging import DataWarning, Span, spans_to_bio, words_with_offsets
from finetune.training.trainer import TrainingArguments

TAGS = bio_tags(["date", "person_name"])  # O, B-date, I-date, B-person_name, I-person_name


def one_hot(indices, size=len(TAGS), p=0.9):
    probs = np.full((len(indices), size), (1 - p) / (size - 1))
    probs[np.arange(len(indices)), indices] = p
    return probs


def test_bio_tags_put_o_first_then_b_i_per_type():
    assert TAGS == ["O", "B-date", "I-date", "B-person_name", "I-person_name"]


def ranked(first, second):
    """Probabilities where each word's best tag is ``first`` and its runner-up ``second``."""
    probs = np.full((len(first), len(TAGS)), 0.02)
    probs[np.arange(len(first)), second] = 0.3
    probs[np.arange(len(first)), first] = 0.62
    return probs


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ([0, 2, 2], [1, 1, 1], [0, 1, 2]),  # I-date after O cannot be: its runner-up B-date starts the entity
        ([2], [1], [1]),  # nor can a text start inside an entity
        ([1, 4], [0, 3], [1, 3]),  # I-person_name after B-date: a new person_name starts
        ([3, 4, 0], [0, 0, 1], [3, 4, 0]),  # valid sequences are kept as they are
    ],
)
def test_constrained_decode_only_yields_valid_iob2(first, second, expected):
    assert constrained_decode(np.log(ranked(first, second)), TAGS) == expected


def test_decode_entities_gives_offsets_into_the_original_text_and_mean_scores():
    text = "  meet Anna Smith on the 5th"
    words = words_with_offsets(text)  # meet, Anna, Smith, on, the, 5, th
    featured = [w for w in words if w[0] != "th"]  # 'th' shares the sub-token of '5'
    probs = one_hot([0, 3, 4, 0, 1, 2])
    probs[2] = one_hot([4], p=0.5)[0]
    entities = decode_entities(text, featured, probs, TAGS, words)
    assert [(e.type, e.text) for e in entities] == [("person_name", "Anna Smith"), ("date", "the 5th")]
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
    assert entities[0].score == pytest.approx(0.7)


@pytest.fixture(scope="module")
def tiny(tiny_entities_dir):
    return load_entities(str(tiny_entities_dir))


@pytest.fixture(scope="module")
def frozen_tagger(tiny, base_encoder, tmp_path_factory):
    args = TrainingArguments(epochs=40, batch_size=16, lr=1e-2, patience=40, progress=False)
    out = tmp_path_factory.mktemp("ner") / "model"
    return train_tagger(tiny, TaggerSpec(head=HeadConfig(kind="linear")), args, base_encoder, out)


def test_frozen_tagger_learns_tiny_data_and_saves_a_loadable_model(frozen_tagger, tiny, base_encoder):
    assert frozen_tagger.metrics["val_entity_f1"] > 0.8
    assert (frozen_tagger.path / "decoding.json").is_file()  # the transition prior, fitted on train + validation
    assert set(frozen_tagger.metrics["decoding"]["validation_entity_f1_by_weight"]) == {"0", "0.25", "0.5", "0.75", "1"}
    tagger = EntityTagger.load(frozen_tagger.path, encoder=base_encoder)
    assert tagger.prior is not None and tagger.prior.weight == frozen_tagger.metrics["decoding"]["weight"]
    assert tagger.uses_frozen_encoder and tagger.entity_types == ["amount_of_money", "date", "person_name"]
    texts = [ex.text for ex in tiny.test]
    found = tagger.predict(texts)
    for text, entities in zip(texts, found):
        for entity in entities:
            assert text[entity.start : entity.end] == entity.text and 0 < entity.score <= 1
    gold = [spans_to_bio(ex.text, ex.spans)[1] for ex in tiny.test]
    predicted = [spans_to_bio(t, [Span(e.start, e.end, e.type) for e in es])[1] for t, es in zip(texts, found)]
    assert entity_f1(gold, predicted) > 0.8


def test_predict_handles_empty_and_very_long_texts(frozen_tagger, caplog):
    tagger = frozen_tagger.tagger
    long_text = "send 20 pounds to Anna tomorrow " + "and then some more words " * 100
    with caplog.at_level(logging.WARNING):
        found = tagger.predict(["", "   ", long_text])
    assert found[0] == [] and found[1] == []
    kept_end = tagger.encode([long_text])[0].words[-1][2]
    assert kept_end < len(long_text) and all(e.end <= kept_end for e in found[2])  # only from the kept part
    assert "truncated" in caplog.text


def test_predict_rejects_a_bare_string(frozen_tagger):
    with pytest.raises(TypeError, match="list of texts"):
        frozen_tagger.tagger.predict("send 20 pounds")


def test_lora_tagger_keeps_the_shared_encoder_plain(tiny, encoder, base_encoder, tmp_path):
    args = TrainingArguments(epochs=1, batch_size=8, lr=1e-3, patience=1, progress=False)
    from finetune.models.lora import LoraSettings

    spec = TaggerSpec(head=HeadConfig(kind="linear"), lora=LoraSettings(r=2, alpha=4))
    trained = train_tagger(tiny, spec, args, encoder, tmp_path / "lora")
    assert (trained.path / "adapter" / "adapter_model.safetensors").is_file()
    tagger = EntityTagger.load(trained.path, encoder=base_encoder)
    assert not tagger.uses_frozen_encoder and not base_encoder.has_adapter
    assert len(tagger.predict(["pay 5 euros to Tom on Monday"])) == 1


def test_hybrid_quantum_head_tagger_saves_loads_and_runs_on_aer(tiny, base_encoder, tmp_path):
    from finetune.quantum.ansatz import AnsatzConfig

    head = HeadConfig(kind="hybrid", n_circuits=1, ansatz=AnsatzConfig(n_qubits=3, depth=1, encoding="amplitude"))
    args = TrainingArguments(epochs=2, batch_size=16, lr=1e-2, patience=2, progress=False)
    trained = train_tagger(tiny, TaggerSpec(head=head), args, base_encoder, tmp_path / "hybrid")
    texts = [ex.text for ex in tiny.test]
    exact = EntityTagger.load(trained.path, encoder=base_encoder)
    assert exact.head.config.kind == "hybrid"
    features = torch.cat([w.features for w in exact.encode(texts[:2])])
    with torch.no_grad():
        saved, loaded = trained.tagger.head.eval()(features), exact.head.eval()(features)
    np.testing.assert_allclose(loaded.numpy(), saved.numpy(), atol=1e-5)  # the circuit weights round-trip
    sampled = EntityTagger.load(trained.path, encoder=base_encoder, backend="aer:shots=256")
    assert sampled.head.quantum.backend == "aer:shots=256"
    with torch.no_grad():
        assert not np.allclose(sampled.head.eval()(features).numpy(), loaded.numpy())  # shot noise: Aer really ran
    for text, entities in zip(texts[:2], sampled.predict(texts[:2])):
        assert all(text[e.start : e.end] == e.text for e in entities)


def test_spans_that_cannot_be_tagged_are_counted_not_mislabelled(tiny, base_encoder, tmp_path):
    from finetune.data.tagging import TaggedExample

    bad = TaggedExample("pay Tomorrow", (Span(5, 12, "date"),))  # starts inside a word
    tiny_bad = type(tiny)(tiny.name, tiny.entity_types, tiny.train + [bad], tiny.validation, tiny.test)
    args = TrainingArguments(epochs=1, progress=False)
    trained = train_tagger(tiny_bad, TaggerSpec(head=HeadConfig(kind="linear")), args, base_encoder, tmp_path / "m")
    assert trained.metrics["skipped_spans"] == 1


def test_recorded_data_warnings_collects_messages():
    with recorded_data_warnings() as messages:
        spans_to_bio("pay Tomorrow", [Span(5, 12, "date")])
    assert len(messages) == 1 and "word boundaries" in messages[0]
    with pytest.warns(DataWarning):
        spans_to_bio("pay Tomorrow", [Span(5, 12, "date")])


def test_load_rejects_a_model_of_another_task(tmp_path):
    from finetune.models.checkpoint import CheckpointError, save_checkpoint
    from finetune.models.heads import Head

    save_checkpoint(tmp_path, task="intents", head=Head(HeadConfig(kind="linear", n_classes=2)), labels=["a", "b"],
                    encoder={"model": "default"})
    with pytest.raises(CheckpointError, match="not an entity tagger"):
        EntityTagger.load(tmp_path)


def shipped_f1(data_dir, encoder) -> float:
    from eval.ner import evaluate_tagger
    from finetune.models.ensemble import is_ensemble
    from agent.shipped import NER_MODEL as ASSETS
    from finetune.models.loading import load_tagger

    if not ((ASSETS / "config.json").is_file() or is_ensemble(ASSETS)):
        pytest.skip(f"no shipped entity tagger at {ASSETS}")
    dataset = load_entities("nlupp", data_dir=data_dir, train_folds=range(18), test_folds=[18, 19])
    return evaluate_tagger(load_tagger(ASSETS, encoder=encoder), dataset.test)["micro"]["f1"]


@pytest.mark.slow
def test_shipped_model_reaches_entity_f1_085_on_nlupp_folds_18_19(data_dir, base_encoder):
    # issue 4's target; measured 0.866 (recipe chosen by cross-validation on folds 0-17, then refitted
    # on all of them; BENCHMARKS.md, Entities). 79 entities: one is 1.3 points, so little headroom.
    assert shipped_f1(data_dir, base_encoder) >= 0.85


@pytest.mark.slow
def test_news_tagger_keeps_its_measured_f1_on_nlupp_folds_18_19(data_dir, base_encoder):
    from agent.monitor.scoring import NEWS_TAGGER_DIR
    from eval.ner import evaluate_tagger

    dataset = load_entities("nlupp", data_dir=data_dir, train_folds=range(18), test_folds=[18, 19])
    tagger = EntityTagger.load(NEWS_TAGGER_DIR, encoder=base_encoder)
    # Measured 0.800 (BENCHMARKS.md, News topics: a tenth joint run).
    assert evaluate_tagger(tagger, dataset.test)["micro"]["f1"] >= 0.77

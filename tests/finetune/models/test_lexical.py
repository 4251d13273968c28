"""The word n-gram part of a classifier: fitting, saving without pickle, joining a head's probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from text_data import TEXTS

from finetune.models.checkpoint import CheckpointError
from finetune.models.lexical import LexicalModel, LexicalSettings, fuse_log_probs, remove_lexical

LABELS = sorted(TEXTS)


def _fitted(**kw) -> LexicalModel:
    texts = [t for label in LABELS for t in TEXTS[label]]
    labels = [label for label in LABELS for _ in TEXTS[label]]
    return LexicalModel.fit(texts, labels, LABELS, min_df=1, **kw)


def test_words_alone_tell_the_tiny_intents_apart():
    model = _fitted(c=10.0)
    log_q = model.log_probs(["my card was stolen", "what is my balance", "wire money to john"])
    assert log_q.shape == (3, 3) and np.allclose(np.exp(log_q).sum(axis=1), 1.0, atol=1e-5)
    assert [LABELS[i] for i in log_q.argmax(axis=1)] == ["card_lost", "balance", "transfer"]
    assert model.log_probs([]).shape == (0, 3)
    with pytest.raises(TypeError, match="list of texts"):
        model.log_probs("one text")


def test_save_and_load_give_the_same_probabilities_and_no_pickle(tmp_path):
    model = _fitted(c=10.0).with_weight(0.7, 1.5)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lexical.json", "lexical.safetensors"]
    assert json.loads((tmp_path / "lexical.json").read_text())["weight"] == 0.7
    loaded = LexicalModel.load(tmp_path)
    texts = ["I lost my card", "an unseen sentence about nothing", ""]
    assert np.allclose(loaded.log_probs(texts), model.log_probs(texts), atol=1e-6)
    assert (loaded.weight, loaded.temperature, loaded.labels) == (0.7, 1.5, LABELS)
    assert LexicalModel.load(tmp_path / "elsewhere") is None
    assert remove_lexical(tmp_path) and not remove_lexical(tmp_path) and not list(tmp_path.iterdir())


def test_fuse_multiplies_the_head_by_the_words_and_keeps_rows_normalised():
    model = _fitted(c=10.0)
    head = np.full((2, 3), 1 / 3, dtype=np.float32)  # a head with no opinion
    texts = ["my card is gone", "balance please"]
    fused = model.with_weight(1.0).fuse(head, texts)
    assert np.allclose(fused, np.exp(model.log_probs(texts)), atol=1e-5)  # so the words decide
    assert np.array_equal(model.with_weight(0.0).fuse(head, texts), head)
    sure = np.array([[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]], dtype=np.float32)
    tempered = fuse_log_probs(sure, model.log_probs(texts), 0.5, temperature=3.0)
    plain = fuse_log_probs(sure, model.log_probs(texts), 0.5)
    assert np.array_equal(tempered.argmax(1), plain.argmax(1)) and (tempered.max(1) < plain.max(1)).all()
    with pytest.raises(ValueError, match="do not match"):
        model.fuse(head, ["one text"])


def test_two_labels_and_a_label_the_training_texts_lack():
    texts = TEXTS["balance"] + TEXTS["transfer"]
    labels = ["balance"] * 10 + ["transfer"] * 10
    model = LexicalModel.fit(texts, labels, ["balance", "card_lost", "transfer"], min_df=1)
    probs = np.exp(model.log_probs(["check my balance", "transfer funds", "lost card"]))
    assert probs.argmax(1).tolist()[:2] == [0, 2]
    assert (probs[:, 1] < 1e-6).all()  # never seen in training: never chosen by words
    with pytest.raises(ValueError, match="at least two labels"):
        LexicalModel.fit(TEXTS["balance"], ["balance"] * 10, LABELS, min_df=1)
    with pytest.raises(ValueError, match="not among"):
        LexicalModel.fit(["a b", "c d"], ["balance", "weather"], LABELS, min_df=1)
    with pytest.raises(ValueError, match="no word n-gram"):
        LexicalModel.fit(["a", "b"], ["balance", "transfer"], LABELS, min_df=5)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "lexical.safetensors").write_bytes(b"not tensors"), "unreadable"),
        (lambda d: (d / "lexical.safetensors").unlink(), "is missing"),
        (lambda d: (d / "lexical.json").write_text('{"format": "other"}'), "is not a lexical part"),
        (lambda d: (d / "lexical.json").write_text("{"), "not valid JSON"),
    ],
)
def test_a_broken_lexical_part_is_one_clear_error(tmp_path, damage, message):
    _fitted().save(tmp_path)
    damage(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        LexicalModel.load(tmp_path)


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"ngram_max": 0}, "ngram_max"), ({"min_df": 0}, "min_df"), ({"c_grid": ()}, "c_grid"),
     ({"c_grid": (0.0,)}, "c_grid"), ({"weight_grid": (-1.0,)}, "weight_grid")],
)
def test_settings_validate_themselves(kw, message):
    with pytest.raises(ValueError, match=message):
        LexicalSettings(**kw)

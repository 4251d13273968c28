import numpy as np
import pytest

from finetune.models.checkpoint import CheckpointError
from finetune.models.tag_transitions import TransitionPrior, choose_weight, count_transitions, load_prior, save_prior
from finetune.models.tag_transitions import constrained_decode
from finetune.models.tagger import bio_tags

TAGS = bio_tags(["date"])  # O, B-date, I-date


def test_count_transitions_is_add_one_smoothed_with_the_start_row_last():
    log_probs = count_transitions([["B-date", "I-date", "O"], ["O"]], TAGS)
    probs = np.exp(log_probs)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(1), 1)
    assert probs[-1].tolist() == pytest.approx([2 / 5, 2 / 5, 1 / 5])  # starts: O once, B-date once
    assert probs[1, 2] == pytest.approx(2 / 4)  # B-date -> I-date seen once


def test_the_prior_joins_a_split_entity_the_head_alone_breaks():
    # "this Friday": the head slightly prefers B-date on both words (two entities).
    head = np.log(np.array([[0.1, 0.8, 0.1], [0.1, 0.46, 0.44]]))
    assert constrained_decode(head, TAGS) == [1, 1]
    transitions = count_transitions([["B-date", "I-date"]] * 20 + [["O", "B-date"]] * 5, TAGS)
    assert constrained_decode(head, TAGS, TransitionPrior(transitions, 0.5)) == [1, 2]


def test_choose_weight_picks_the_best_validation_f1_and_prefers_no_prior_on_ties():
    head = [np.log(np.array([[0.1, 0.8, 0.1], [0.1, 0.46, 0.44]]))]
    gold = [["B-date", "I-date"]]
    transitions = count_transitions([["B-date", "I-date"]] * 20, TAGS)
    weight, scores = choose_weight(head, gold, TAGS, transitions)
    assert weight > 0 and scores["0"] == 0.0 and scores[f"{weight:g}"] == 1.0
    weight, _ = choose_weight([np.log(np.array([[0.1, 0.8, 0.1]]))], [["B-date"]], TAGS, transitions)
    assert weight == 0.0


def test_prior_round_trips_and_a_bad_file_is_a_clear_error(tmp_path):
    prior = TransitionPrior(count_transitions([["O"]], TAGS), 0.25)
    save_prior(tmp_path, prior, TAGS, {"data": "tiny"})
    loaded = load_prior(tmp_path, TAGS)
    assert loaded.weight == 0.25 and np.allclose(loaded.log_probs, prior.log_probs, atol=1e-6)
    assert load_prior(tmp_path / "missing", TAGS) is None
    with pytest.raises(ValueError, match="tags differ"):
        load_prior(tmp_path, bio_tags(["time"]))
    (tmp_path / "decoding.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="agent finetune decoding"):
        load_prior(tmp_path, TAGS)


def test_a_tagger_with_a_broken_prior_fails_to_load_with_the_reason(tmp_path):
    import shutil

    from finetune.models.ensemble import is_ensemble, read_record
    from agent.shipped import NER_MODEL as ASSETS
    from finetune.models.tagger import EntityTagger

    shipped = ASSETS / read_record(ASSETS).members[0] if is_ensemble(ASSETS) else ASSETS  # a member: one tagger
    if not (shipped / "config.json").is_file():
        pytest.skip(f"no shipped entity tagger at {ASSETS}")
    shutil.copytree(shipped, tmp_path / "ner")
    (tmp_path / "ner" / "checksums.json").unlink()  # unrecorded, or the checksum would name the file first
    (tmp_path / "ner" / "decoding.json").write_text("[]", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a usable decoding prior"):
        EntityTagger.load(tmp_path / "ner")


def test_transition_prior_validates_its_shape_and_weight():
    with pytest.raises(ValueError, match=r"\[C \+ 1, C\]"):
        TransitionPrior(np.zeros((3, 3)), 0.5)
    with pytest.raises(ValueError, match="weight"):
        TransitionPrior(np.zeros((4, 3)), -1.0)


def test_fit_prior_takes_a_given_weight_and_needs_one_without_validation():
    from types import SimpleNamespace

    from finetune.models.tag_transitions import fit_prior
    from finetune.data.tagging import Span

    tagger = SimpleNamespace(tags=TAGS)  # with a weight given, the tagger's encoder never runs
    train = [SimpleNamespace(text="pay on Friday", spans=(Span(7, 13, "date"),))]
    prior, info = fit_prior(tagger, train, [], weight=0.5)
    assert prior.weight == 0.5 and info["weight_given"] == 0.5 and info["validation_sentences"] == 0
    assert np.allclose(prior.log_probs, count_transitions([["O", "O", "B-date"]], TAGS))
    with pytest.raises(ValueError, match="no validation data"):
        fit_prior(tagger, train, [])
    with pytest.raises(ValueError, match="0 or more"):
        fit_prior(tagger, train, [], weight=-1)

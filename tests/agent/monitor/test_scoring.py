import pytest

from agent.monitor.scoring import ItemScore, ScoringConfig, Sentiment, split_sentences
from agent.monitor.watchlist import Mention


def test_sentences_do_not_split_after_abbreviations_and_initials():
    body = "Acme Inc. said profits fell. The U.S. unit cut 200 jobs! Shares fell 3.5% on Jan. 5. Why? Nobody knows."
    assert split_sentences(body) == ["Acme Inc. said profits fell.", "The U.S. unit cut 200 jobs!",
                                     "Shares fell 3.5% on Jan. 5.", "Why?", "Nobody knows."]


def test_sentiment_from_probabilities_is_rounded_and_signed():
    s = Sentiment.from_probs({"negative": 0.700004, "neutral": 0.2, "positive": 0.099996})
    assert (s.label, s.score, s.probs["negative"]) == ("negative", -0.6, 0.7)


def test_item_scores_survive_a_round_trip():
    s = Sentiment.from_probs({"positive": 1.0})
    score = ItemScore("a", s, s, s, 2, (Mention("company", "Acme", "Acme", 0, 4, "tagger", "ACM", 0.9, "body"),))
    assert ItemScore.from_dict(score.to_dict()) == score


@pytest.mark.parametrize("options, message", [
    ({"max_sentences": 0}, "max_sentences"), ({"headline_weight": 1.5}, "headline_weight"), ({"threads": 0}, "threads"),
    ({"runtime": "gpu"}, "runtime must be one of torch, onnx"),
])
def test_bad_scoring_settings(options, message):
    with pytest.raises(ValueError, match=message):
        ScoringConfig(**options)


def test_scoring_on_a_gpu_needs_the_torch_runtime():
    from agent.monitor.cli import scoring_device
    from agent.monitor.scoring import ScoringConfig

    with pytest.raises(ValueError, match="runs on the CPU; use --runtime torch"):
        ScoringConfig(runtime="onnx-int8", device="cuda")
    assert ScoringConfig(runtime="torch", device="cuda").device == "cuda"
    assert scoring_device("auto", "onnx-int8") == "cpu"  # ONNX Runtime is CPU-only: auto keeps the CPU
    assert scoring_device("cpu", "torch") == "cpu"

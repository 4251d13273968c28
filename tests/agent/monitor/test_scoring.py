import pytest

from agent.monitor.feeds import FeedItem
from agent.monitor.scoring import ItemScore, ScoringConfig, Sentiment, split_sentences
from agent.monitor.watchlist import Mention, Watchlist


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


class FakeClassifier:
    """A classifier with an adapter of its own (the planner gives it its own pass): label by keyword."""

    uses_frozen_encoder = False

    def __init__(self, labels, rules, default):
        self.labels, self.rules, self.default = labels, rules, default
        self.seen: list[str] = []

    def shares_encoder_with(self, other):
        return False

    def predict(self, texts):
        from finetune.models.classifier import Prediction

        self.seen += texts
        out = []
        for text in texts:
            label = next((lab for word, lab in self.rules.items() if word in text), self.default)
            probs = {name: (0.8 if name == label else 0.2 / (len(self.labels) - 1)) for name in self.labels}
            out.append(Prediction(label, 0.8, probs))
        return out


class PlainEncoder:
    has_adapter = False


def test_the_topic_is_the_headlines_and_body_sentences_do_not_vote():
    from agent.monitor.scoring import ModelScorer, Topic

    sentiment = FakeClassifier(["negative", "neutral", "positive"], {"cut": "negative"}, "neutral")
    topics = FakeClassifier(["Earnings", "Fed | Central Banks", "Macro"], {"profit": "Earnings", "Fed": "Fed | Central Banks"},
                            "Macro")
    scorer = ModelScorer(PlainEncoder(), sentiment, None, Watchlist.from_dict({"companies": [{"name": "Acme"}]}),
                         topics=topics)
    items = [FeedItem("f", 0, "a", None, "", "Acme profit jumps",
                      "The Fed held rates. The Fed spoke again. The Fed is watched."),
             FeedItem("f", 1, "b", None, "", "Acme to cut jobs", "")]
    first, second = scorer.score(items)
    assert first.topic == Topic("Earnings", 0.8) and second.topic == Topic("Macro", 0.8)
    assert second.overall.label == "negative"
    assert topics.seen == ["Acme profit jumps", "Acme to cut jobs"]  # headlines only: the body is not read for topics
    without = ModelScorer(PlainEncoder(), sentiment, None, Watchlist.from_dict({"companies": []}))
    assert without.score(items[:1])[0].topic is None


def test_a_missing_default_topic_model_is_noted_and_none_is_silent(monkeypatch, tmp_path):
    from agent.monitor import scoring

    monkeypatch.setattr(scoring, "NEWS_TOPICS_DIR", tmp_path / "news-topics")
    config = ScoringConfig()
    assert scoring.topic_model_dir(config) is None
    assert "no topic model at" in scoring.topics_note(config) and "--topic-model none" in scoring.topics_note(config)
    assert scoring.topics_note(ScoringConfig(topic_model="none")) is None
    assert scoring.topic_model_dir(ScoringConfig(topic_model=str(tmp_path))) == tmp_path  # a path given is used as it is
    with pytest.raises(ValueError, match="topic_model must be a checkpoint folder"):
        ScoringConfig(topic_model=" ")


def test_scoring_on_a_gpu_needs_the_torch_runtime():
    from agent.monitor.cli import scoring_device
    from agent.monitor.scoring import ScoringConfig

    with pytest.raises(ValueError, match="runs on the CPU; use --runtime torch"):
        ScoringConfig(runtime="onnx-int8", device="cuda")
    assert ScoringConfig(runtime="torch", device="cuda").device == "cuda"
    assert scoring_device("auto", "onnx-int8") == "cpu"  # ONNX Runtime is CPU-only: auto keeps the CPU
    assert scoring_device("cpu", "torch") == "cpu"

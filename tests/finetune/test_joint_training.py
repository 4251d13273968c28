import pytest
import torch
from torch.nn import functional as F

from finetune.classifier import TextClassifier
from finetune.joint_training import JointSpec, joint_loss, joint_scores
from finetune.nlu_models import analyze
from finetune.tagger import IGNORE, EntityTagger


def test_joint_loss_reads_each_task_from_its_own_slots():
    n_tags, n_sentiment, n_words = 3, 2, 2
    logits = torch.randn(2, n_tags + n_sentiment, 1 + n_words)
    labels = torch.full((2, 1 + n_words), IGNORE)
    labels[0, 0] = n_tags + 1  # a sentiment example, class 1
    labels[1, 1:] = torch.tensor([2, 0])  # a tagging example
    expected = F.cross_entropy(logits[:1, n_tags:, 0], torch.tensor([1])) + 0.5 * F.cross_entropy(
        logits[1:, :n_tags, 1:], labels[1:, 1:])
    assert torch.allclose(joint_loss(n_tags, tagging_weight=0.5)(logits, labels), expected)
    only_tags = labels.clone()
    only_tags[0, 0] = IGNORE  # a batch without sentiment examples skips that term
    assert torch.allclose(joint_loss(n_tags)(logits, only_tags), F.cross_entropy(logits[:, :n_tags, 1:], only_tags[:, 1:]))


def test_joint_scores_split_the_packed_logits():
    tags = ["O", "B-date", "I-date"]
    logits = torch.full((2, 5, 3), -5.0)
    labels = torch.full((2, 3), IGNORE)
    labels[0, 0] = 3 + 1
    logits[0, 3 + 1, 0] = 5.0  # right sentiment
    labels[1, 1:] = torch.tensor([1, 0])
    logits[1, 1, 1], logits[1, 0, 2] = 5.0, 5.0  # B-date, O: right entity
    scores = joint_scores(labels.numpy(), logits.numpy(), tags)
    assert scores == {"sentiment_accuracy": 1.0, "sentiment_macro_f1": 1.0, "entity_f1": 1.0}


def test_joint_spec_validates_itself():
    with pytest.raises(ValueError, match="tagging_repeat"):
        JointSpec(tagging_repeat=0)
    with pytest.raises(ValueError, match="tagging_weight"):
        JointSpec(tagging_weight=0)


@pytest.mark.slow
def test_joint_training_writes_two_models_on_one_adapter(tiny_joint):
    sentiment_adapter = (tiny_joint.sentiment_path / "adapter" / "adapter_model.safetensors").read_bytes()
    assert sentiment_adapter == (tiny_joint.ner_path / "adapter" / "adapter_model.safetensors").read_bytes()
    assert tiny_joint.metrics["val"]["sentiment_accuracy"] > 0.6 and tiny_joint.metrics["val"]["entity_f1"] > 0.5
    sentiment = TextClassifier.load(tiny_joint.sentiment_path)
    tagger = EntityTagger.load(tiny_joint.ner_path)
    assert sentiment.task == "sentiment" and tagger.entity_types == ["amount_of_money", "date", "person_name"]
    assert sentiment.checkpoint.settings["joint"]["partner"] == str(tiny_joint.ner_path)


@pytest.mark.slow
def test_a_shared_adapter_gives_one_pass_with_the_same_answers(tiny_joint, base_encoder, monkeypatch):
    sentiment = TextClassifier.load(tiny_joint.sentiment_path, encoder=base_encoder)
    tagger = EntityTagger.load(tiny_joint.ner_path, encoder=base_encoder)
    texts = ["pay 5 euros to Tom on Monday", "shares plunge after profit warning", ""]
    alone_sentiment, alone_entities = sentiment.predict(texts), tagger.predict(texts)
    passes = []
    for model in (sentiment, tagger):
        original = model.encoder._passes
        monkeypatch.setattr(model.encoder, "_passes", lambda *a, _o=original, **k: passes.append(1) or _o(*a, **k))
    together = analyze(texts, encoder=base_encoder, sentiment=sentiment, entities=tagger)
    assert len(passes) == 1
    for analysis, s, e in zip(together, alone_sentiment, alone_entities):
        assert analysis.sentiment.label == s.label and analysis.sentiment.confidence == pytest.approx(s.confidence, abs=1e-5)
        assert [(x.type, x.start, x.end) for x in analysis.entities] == [(x.type, x.start, x.end) for x in e]

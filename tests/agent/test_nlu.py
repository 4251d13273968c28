"""NLU: the three shipped models over one message, with the shared sentence vector for retrieval."""

from __future__ import annotations

import pytest
import torch

from agent.nlu import NLU


@pytest.fixture(scope="module")
def nlu(base_encoder):
    return NLU.load(encoder=base_encoder)


@pytest.mark.slow
def test_understands_intent_entities_and_sentiment(nlu):
    result = nlu.understand("I sent £250 to Anna on Monday and she still hasn't received it")
    assert result.intent == "transfer_not_received_by_recipient"
    assert 0 < result.confidence <= 1 and result.alternatives[0][0] == result.intent
    assert any(e.type == "amount_of_money" and "250" in e.text for e in result.entities)
    assert all(result.text[e.start:e.end] == e.text for e in result.entities)
    assert result.sentiment in ("negative", "neutral", "positive")
    assert result.to_dict()["intent"] == result.intent


@pytest.mark.slow
def test_the_vector_is_the_plain_encoder_sentence_vector(nlu, base_encoder):
    message = "How do I change my PIN?"
    vector = nlu.understand(message).vector
    assert torch.allclose(vector, base_encoder.encode([message])[0], atol=1e-5)


@pytest.mark.slow
def test_empty_and_huge_messages(nlu):
    empty = nlu.understand("   ")
    assert empty.intent is None and empty.vector is None and empty.entities == ()
    huge = nlu.understand("Where is my card? " * 2000)
    assert len(huge.text) == nlu.max_chars and huge.intent == "card_arrival"
    batch = nlu.understand_batch(["", "How do I change my PIN?"])
    assert batch[0].intent is None and batch[1].intent == "change_pin"


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_chars"):
        NLU(encoder=None, max_chars=0)
    with pytest.raises(TypeError, match="list of messages"):
        NLU(encoder=None).understand_batch("one message")


@pytest.mark.slow
def test_models_trained_on_one_adapter_share_a_pass_in_both_paths(tiny_joint, base_encoder):
    from finetune.models.classifier import TextClassifier
    from finetune.models.tagger import EntityTagger

    sentiment = TextClassifier.load(tiny_joint.paths["sentiment"], encoder=base_encoder)
    entities = EntityTagger.load(tiny_joint.ner_path, encoder=base_encoder)
    assert sentiment.shares_encoder_with(entities)
    messages = ["pay 5 euros to Tom on Monday", "shares plunge after profit warning"]
    results = [NLU(base_encoder, entities=entities, sentiment=sentiment, parallel=parallel).understand_batch(messages)
               for parallel in (True, False)]
    for concurrent, sequential in zip(*results):
        assert concurrent.sentiment == sequential.sentiment
        assert concurrent.sentiment_score == pytest.approx(sequential.sentiment_score, abs=1e-5)
        assert [(e.type, e.start) for e in concurrent.entities] == [(e.type, e.start) for e in sequential.entities]
        assert torch.allclose(concurrent.vector, sequential.vector, atol=1e-5)

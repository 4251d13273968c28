"""The shipped news-topic model: its score on a slice of fin_topics' valid.csv, and one encoder pass
with the monitor's sentiment classifier and tagger."""

from __future__ import annotations

import pytest

from agent.shipped import NEWS_NER_MODEL, NEWS_SENTIMENT_MODEL, NEWS_TOPICS_MODEL


@pytest.mark.slow
def test_the_shipped_topic_model_scores_on_a_slice_of_valid(base_encoder):
    from finetune.data.loaders import load_topics
    from finetune.models.classifier import TextClassifier

    try:
        data = load_topics("fin_topics")
    except Exception as exc:  # the shared data folder is not on every machine
        pytest.skip(f"fin_topics not available: {exc}")
    model = TextClassifier.load(NEWS_TOPICS_MODEL, encoder=base_encoder)
    examples = data.test[::10]  # 412 of the 4,117 valid.csv headlines
    predicted = [p.label for p in model.predict([ex.text for ex in examples])]
    accuracy = sum(p == ex.label for p, ex in zip(predicted, examples)) / len(examples)
    # The whole of valid.csv scored 0.8982, head and word n-grams (BENCHMARKS.md, News topics: a tenth
    # joint run); a slice may dip a little.
    assert accuracy >= 0.75, accuracy


@pytest.mark.slow
def test_the_three_news_models_share_one_encoder_pass(base_encoder, monkeypatch):
    from finetune.models.classifier import TextClassifier
    from finetune.models.passes import analyze, plan_passes
    from finetune.models.tagger import EntityTagger

    sentiment = TextClassifier.load(NEWS_SENTIMENT_MODEL, encoder=base_encoder)
    topics = TextClassifier.load(NEWS_TOPICS_MODEL, encoder=base_encoder)
    tagger = EntityTagger.load(NEWS_NER_MODEL, encoder=base_encoder)
    plan = plan_passes({"entities": tagger, "sentiment": sentiment, "topics": topics})
    assert [(p.kind, p.readers) for p in plan.passes] == [("shared", ("entities", "sentiment", "topics"))]
    texts = ["Oil prices jump as OPEC agrees to cut output", "Apple shares fall after weak iPhone sales"]
    alone = [p.label for p in topics.predict(texts)]
    passes = []
    for model in (sentiment, topics, tagger):
        original = model.encoder._passes
        monkeypatch.setattr(model.encoder, "_passes", lambda *a, _o=original, **k: passes.append(1) or _o(*a, **k))
    together = analyze(texts, encoder=base_encoder, sentiment=sentiment, entities=tagger, topics=topics)
    assert len(passes) == 1
    assert [a.topic.label for a in together] == alone
    assert all(a.sentiment is not None for a in together)

import pytest

from finetune.models.lora import LoraSettings
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.data.loaders import TextDataset, TextExample, load_entities
from finetune.models.encoder import FeatureCache
from finetune.models.heads import HeadConfig
from finetune.models.passes import Analysis, analyze
from finetune.models.tagger import EntityTagger
from finetune.training.tagger import TaggerSpec, train_tagger
from finetune.training.trainer import TrainingArguments

ARGS = TrainingArguments(epochs=30, batch_size=16, lr=1e-2, patience=30, progress=False)


@pytest.fixture(scope="module")
def models(tiny_entities_dir, base_encoder, tmp_path_factory):
    """A frozen entity tagger and two frozen text classifiers, all on the session encoder."""
    root = tmp_path_factory.mktemp("nlu")
    tagged = load_entities(str(tiny_entities_dir))
    tagger_dir = train_tagger(tagged, TaggerSpec(head=HeadConfig(kind="linear")), ARGS, base_encoder, root / "ner").path
    rows = [("send 20 pounds to Anna", "transfer"), ("pay Tom 5 euros", "transfer"), ("wire money to John", "transfer"),
            ("my card is lost", "lost_card"), ("I lost my card", "lost_card"), ("card stolen yesterday", "lost_card")]
    examples = [TextExample(t, label) for t, label in rows]
    data = TextDataset("tiny", ["lost_card", "transfer"], examples, examples, examples)
    cache = FeatureCache(root / "cache")
    spec = ClassifierSpec(task="intents", head=HeadConfig(kind="linear"))
    intents = train_classifier(data, spec, ARGS, base_encoder, root / "intents", cache=cache).path
    sentiment_spec = ClassifierSpec(task="sentiment", head=HeadConfig(kind="linear"))
    sentiment = train_classifier(data, sentiment_spec, ARGS, base_encoder, root / "sentiment", cache=cache).path
    return {"ner": tagger_dir, "intents": intents, "sentiment": sentiment, "tagged": tagged}


class CountingEncoder:
    """Counts the encoder's forward passes (every encode* call runs through forward)."""

    def __init__(self, encoder, monkeypatch):
        self.calls = {"encode_all": 0, "forward": 0}
        for name in self.calls:
            original = getattr(encoder, name)

            def counted(*args, _name=name, _original=original, **kwargs):
                self.calls[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(encoder, name, counted)


def test_frozen_models_share_one_encoder_pass(models, base_encoder, monkeypatch):
    from finetune.models.classifier import TextClassifier

    intents = TextClassifier.load(models["intents"], encoder=base_encoder)
    sentiment = TextClassifier.load(models["sentiment"], encoder=base_encoder)
    tagger = EntityTagger.load(models["ner"], encoder=base_encoder)
    texts = ["send 20 pounds to Anna tomorrow", "I lost my card", ""]
    expected = tagger.predict(texts)
    spy = CountingEncoder(base_encoder, monkeypatch)
    results = analyze(texts, encoder=base_encoder, intents=intents, entities=tagger, sentiment=sentiment)
    assert spy.calls == {"encode_all": 1, "forward": 1}  # three texts fit one batch: one pass in all
    assert [r.entities for r in results] == expected
    assert results[0].intent.label == "transfer" and results[1].intent.label == "lost_card"
    assert all(r.sentiment is not None for r in results) and results[2].entities == []


def test_models_not_asked_are_left_out(models, base_encoder):
    tagger = EntityTagger.load(models["ner"], encoder=base_encoder)
    results = analyze(["pay 5 euros to Tom"], encoder=base_encoder, entities=tagger)
    assert results[0].intent is None and results[0].sentiment is None and results[0].entities
    assert analyze([], encoder=base_encoder, entities=tagger) == []
    assert analyze(["hello"], encoder=base_encoder) == [Analysis()]


def test_a_lora_tagger_runs_its_own_pass_beside_the_shared_one(models, base_encoder, encoder, tmp_path, monkeypatch):
    from finetune.models.classifier import TextClassifier

    spec = TaggerSpec(head=HeadConfig(kind="linear"), lora=LoraSettings(r=2, alpha=4))
    args = TrainingArguments(epochs=1, batch_size=8, progress=False)
    lora_dir = train_tagger(models["tagged"], spec, args, encoder, tmp_path / "lora").path
    tagger = EntityTagger.load(lora_dir, encoder=base_encoder)
    intents = TextClassifier.load(models["intents"], encoder=base_encoder)
    texts = ["send 20 pounds to Anna tomorrow"]
    expected = tagger.predict(texts)
    shared, own = CountingEncoder(base_encoder, monkeypatch), CountingEncoder(tagger.encoder, monkeypatch)
    results = analyze(texts, encoder=base_encoder, intents=intents, entities=tagger)
    # One pass each: the shared encoder for the frozen intents model (sentence features only: the
    # tagger reads its own words), the tagger's own LoRA encoder for the entities.
    assert shared.calls["forward"] == 1 and shared.calls["encode_all"] == 0
    assert own.calls["encode_all"] == 1
    assert results[0].entities == expected[0]


def test_analyze_refuses_an_encoder_with_an_adapter(encoder):
    encoder.add_lora(r=2, alpha=4)
    with pytest.raises(ValueError, match="plain encoder"):
        analyze(["hi"], encoder=encoder)



def test_the_shipped_tagger_decodes_with_its_fitted_transition_prior():
    from agent.shipped import NER_MODEL
    from finetune.models.loading import load_tagger

    assert load_tagger(NER_MODEL).prior is not None


class _Model:
    """What the planner reads of a model: is its encoder frozen, which adapter does it carry."""

    def __init__(self, adapter: str | None) -> None:
        self.adapter = adapter
        self.uses_frozen_encoder = adapter is None

    def shares_encoder_with(self, other) -> bool:
        return self.adapter is not None and self.adapter == other.adapter


def test_the_plan_groups_models_by_the_encoder_pass_they_read():
    from finetune.models.passes import plan_passes

    # The assistant: intents and tagger with adapters of their own, a frozen sentiment head.
    plan = plan_passes({"intents": _Model("a"), "entities": _Model("b"), "sentiment": _Model(None)}, need_features=True)
    assert (plan.plain.readers, plan.plain.words) == (("sentiment",), False)
    assert [(p.kind, p.readers) for p in plan.others] == [("own", ("intents",)), ("own", ("entities",))]
    # The news monitor: sentiment and tagger trained together on one adapter share its pass.
    plan = plan_passes({"entities": _Model("j"), "sentiment": _Model("j")})
    assert plan.plain is None
    assert [(p.kind, p.readers, p.words) for p in plan.others] == [("shared", ("entities", "sentiment"), True)]
    # Everything frozen: one plain pass with word features for the tagger.
    plan = plan_passes({"intents": _Model(None), "entities": _Model(None), "sentiment": None})
    assert (plan.plain.readers, plan.plain.words, plan.others) == (("intents", "entities"), True, ())


def test_the_plan_gives_the_news_topics_sentiment_and_tagger_one_shared_pass():
    from finetune.models.passes import plan_passes

    plan = plan_passes({"entities": _Model("j"), "sentiment": _Model("j"), "topics": _Model("j")})
    assert plan.plain is None
    assert [(p.kind, p.readers, p.words) for p in plan.others] == [("shared", ("entities", "sentiment", "topics"), True)]
    # A topic model on another adapter needs a pass of its own; a frozen one reads the plain pass.
    plan = plan_passes({"entities": _Model("j"), "sentiment": _Model("j"), "topics": _Model("t")})
    assert [(p.kind, p.readers) for p in plan.others] == [("shared", ("entities", "sentiment")), ("own", ("topics",))]
    plan = plan_passes({"entities": _Model("j"), "sentiment": _Model("j"), "topics": _Model(None)})
    assert plan.plain.readers == ("topics",)

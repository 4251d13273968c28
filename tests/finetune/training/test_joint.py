import pytest
import torch
from torch.nn import functional as F

from finetune.models.classifier import TextClassifier
from finetune.training.distill import teacher_probabilities
from finetune.training.joint import (JointSpec, SentenceTask, joint_loss, joint_scores, pseudo_tag_rows, soft_columns,
                                     task_blocks)
from finetune.models.passes import analyze
from finetune.models.tagger import IGNORE, Entity, EntityTagger


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


def test_joint_loss_weighs_pseudo_labels_on_sentiment_examples_apart():
    n_tags, n_sentiment, n_words = 3, 2, 2
    logits = torch.randn(2, n_tags + n_sentiment, 1 + n_words)
    labels = torch.full((2, 1 + n_words), IGNORE)
    labels[0, 0] = n_tags  # a sentiment example with a teacher's tags
    labels[0, 1:] = torch.tensor([1, 0])
    labels[1, 1:] = torch.tensor([2, 0])  # a gold tagging example
    sentiment = F.cross_entropy(logits[:1, n_tags:, 0], torch.tensor([0]))
    gold = F.cross_entropy(logits[1:, :n_tags, 1:], labels[1:, 1:])
    pseudo = F.cross_entropy(logits[:1, :n_tags, 1:], labels[:1, 1:])
    assert torch.allclose(joint_loss(n_tags, pseudo_weight=0.25)(logits, labels), sentiment + gold + 0.25 * pseudo)
    assert torch.allclose(joint_loss(n_tags)(logits, labels), sentiment + gold)  # no teacher: its tags are not read


class _Teacher:
    """Tags the word 'shares' as a person's name: no gold example ever does, so only pseudo-labels teach it."""

    entity_types = ["person_name"]
    checkpoint = type("Checkpoint", (), {"path": "teacher"})()

    def predict(self, texts, *, progress=False):
        return [[Entity("person_name", "shares", i, i + 6, 0.9) for i in range(len(t)) if t.startswith("shares", i)]
                for t in texts]


def test_pseudo_tag_rows_turn_a_teachers_entities_into_word_tags():
    tags = ["O", "B-person_name", "I-person_name"]
    [(text, words, word_tags)] = pseudo_tag_rows(_Teacher(), ["shares soar"], tags)
    assert text == "shares soar" and [w for w, _, _ in words] == ["shares", "soar"]
    assert word_tags == ["B-person_name", "O"]
    with pytest.raises(ValueError, match="teacher tagger has tags"):
        pseudo_tag_rows(_Teacher(), ["shares soar"], ["O", "B-date", "I-date"])


@pytest.mark.slow
def test_a_teachers_pseudo_labels_teach_the_shared_tagger(tiny_entities_dir, tmp_path):
    from finetune.models.lora import LoraSettings
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    rows = [TextExample("shares soar after record profit", "positive"), TextExample("shares plunge on weak sales", "negative"),
            TextExample("board to meet on Thursday", "neutral")]
    sentiment = TextDataset("tiny-sentiment", ["negative", "neutral", "positive"], rows * 4, rows, rows)
    spec = JointSpec(tagger_head=HeadConfig(kind="linear"), lora=LoraSettings(r=2, alpha=4), pseudo_tagging_weight=1.0)
    args = TrainingArguments(epochs=6, batch_size=16, lr=1e-2, patience=6, progress=False)
    task = SentenceTask("sentiment", sentiment, tmp_path / "sentiment", HeadConfig(kind="linear"))
    trained = train_joint([task], load_entities(str(tiny_entities_dir)), spec, args, Encoder.load(), tmp_path / "ner",
                          teacher=_Teacher())
    joint = trained.tagger.checkpoint.settings["joint"]
    assert joint["teacher"] == "teacher" and joint["pseudo_tagged_texts"] == 12 and joint["pseudo_entities"] == 8
    found = trained.tagger.predict(["shares soar after record profit"])[0]
    assert [(e.type, e.text) for e in found] == [("person_name", "shares")]


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
    with pytest.raises(ValueError, match="pseudo_tagging_weight"):
        JointSpec(pseudo_tagging_weight=-1)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="distil_weight"):
            JointSpec(distil_weight=bad)
    with pytest.raises(ValueError, match="distil_temperature"):
        JointSpec(distil_temperature=0)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="widen_to"):
            JointSpec(widen_to=bad)


@pytest.mark.slow
def test_joint_training_writes_two_models_on_one_adapter(tiny_joint):
    sentiment_adapter = (tiny_joint.paths["sentiment"] / "adapter" / "adapter_model.safetensors").read_bytes()
    assert sentiment_adapter == (tiny_joint.ner_path / "adapter" / "adapter_model.safetensors").read_bytes()
    assert tiny_joint.metrics["val"]["sentiment_accuracy"] > 0.6 and tiny_joint.metrics["val"]["entity_f1"] > 0.5
    sentiment = TextClassifier.load(tiny_joint.paths["sentiment"])
    tagger = EntityTagger.load(tiny_joint.ner_path)
    assert sentiment.task == "sentiment" and tagger.entity_types == ["amount_of_money", "date", "person_name"]
    assert sentiment.checkpoint.settings["joint"]["partners"] == {"ner": str(tiny_joint.ner_path)}


@pytest.mark.slow
def test_a_shared_adapter_gives_one_pass_with_the_same_answers(tiny_joint, base_encoder, monkeypatch):
    sentiment = TextClassifier.load(tiny_joint.paths["sentiment"], encoder=base_encoder)
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


@pytest.mark.slow
def test_warm_start_begins_from_the_teachers_adapter_and_head(tiny_joint, tiny_entities_dir, tmp_path):
    from finetune.models.lora import LoraSettings
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    teacher = EntityTagger.load(tiny_joint.ner_path)
    rows = [TextExample("pay 5 euros to Tom", "neutral"), TextExample("shares plunge", "negative"),
            TextExample("shares soar", "positive")]
    sentiment = TextDataset("tiny-sentiment", ["negative", "neutral", "positive"], rows, rows, rows)
    spec = JointSpec(lora=LoraSettings(r=8, alpha=8))  # ignored: the teacher's adapter (r=2) is used
    args = TrainingArguments(epochs=1, batch_size=16, lr=1e-12, patience=1, progress=False)  # too small to move anything
    trained = train_joint([SentenceTask("sentiment", sentiment, tmp_path / "sentiment")], load_entities(str(tiny_entities_dir)),
                          spec, args, Encoder.load(), tmp_path / "ner", teacher=teacher, warm_start=True)
    assert trained.tagger.checkpoint.settings["lora"]["r"] == 2 and trained.tagger.checkpoint.settings["joint"]["warm_start"]
    texts = ["send 20 pounds to Anna tomorrow", "wire 100 dollars to Maria next week"]
    spans = lambda found: [[(e.type, e.start, e.end) for e in es] for es in found]  # noqa: E731
    assert spans(trained.tagger.predict(texts)) == spans(teacher.predict(texts)) != [[], []]


def test_warm_start_needs_a_lora_teacher(tiny_entities_dir, tmp_path):
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    rows = [TextExample("shares soar", "positive"), TextExample("shares plunge", "negative")]
    with pytest.raises(ValueError, match="warm_start needs a teacher"):
        train_joint([SentenceTask("sentiment", TextDataset("s", ["negative", "positive"], rows, rows, rows), tmp_path / "s")],
                    load_entities(str(tiny_entities_dir)), JointSpec(), TrainingArguments(epochs=1, progress=False),
                    Encoder.load(), tmp_path / "n", warm_start=True)


def test_joint_loss_and_scores_read_each_sentence_task_from_its_own_block():
    n_tags, n_words = 3, 2
    blocks = task_blocks(n_tags, [("sentiment", 2), ("topics", 4)])
    assert blocks == [("sentiment", 3, 5), ("topics", 5, 9)]
    logits = torch.randn(3, 9, 1 + n_words)
    labels = torch.full((3, 1 + n_words), IGNORE)
    labels[0, 0] = 3 + 1  # sentiment class 1
    labels[1, 0] = 5 + 2  # topic class 2
    labels[2, 1:] = torch.tensor([2, 0])  # a tagging example
    expected = (F.cross_entropy(logits[:1, 3:5, 0], torch.tensor([1]))
                + 2.0 * F.cross_entropy(logits[1:2, 5:9, 0], torch.tensor([2]))
                + F.cross_entropy(logits[2:, :n_tags, 1:], labels[2:, 1:]))
    loss = joint_loss(n_tags, blocks=blocks, smoothings=[0.0, 0.0], weights=[1.0, 2.0])
    assert torch.allclose(loss(logits, labels), expected)
    logits = torch.full((3, 9, 1 + n_words), -5.0)
    logits[0, 4, 0], logits[1, 6, 0] = 5.0, 5.0  # sentiment right, topic wrong (class 1, not 2)
    scores = joint_scores(labels.numpy(), logits.numpy(), ["O", "B-date", "I-date"], blocks)
    assert (scores["sentiment_accuracy"], scores["topics_accuracy"]) == (1.0, 0.0)


def test_sentence_tasks_validate_themselves(tmp_path):
    from finetune.data.loaders import TextDataset, TextExample

    rows = [TextExample("a", "x"), TextExample("b", "y")]
    data = TextDataset("d", ["x", "y"], rows, rows, rows)
    with pytest.raises(ValueError, match="must be one of"):
        SentenceTask("weather", data, tmp_path)
    with pytest.raises(ValueError, match="smoothing"):
        SentenceTask("topics", data, tmp_path, smoothing=1.0)
    with pytest.raises(ValueError, match="weight"):
        SentenceTask("topics", data, tmp_path, weight=0)


@pytest.mark.slow
def test_three_tasks_share_one_adapter_and_one_pass(tiny_entities_dir, tmp_path, base_encoder, monkeypatch):
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.models.lora import LoraSettings
    from finetune.models.passes import plan_passes
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    polarity = [TextExample("shares soar after record profit", "positive"), TextExample("shares plunge on weak sales", "negative"),
                TextExample("board to meet on Thursday", "neutral")]
    topics = [TextExample("central bank raises interest rates", "Fed | Central Banks"),
              TextExample("oil prices climb as supply tightens", "Energy | Oil"),
              TextExample("company to pay a quarterly dividend", "Dividend")]
    tasks = [SentenceTask("sentiment", TextDataset("s", sorted({r.label for r in polarity}), polarity * 4, polarity, polarity),
                          tmp_path / "sentiment", HeadConfig(kind="linear")),
             SentenceTask("topics", TextDataset("t", sorted({r.label for r in topics}), topics * 4, topics, topics),
                          tmp_path / "topics", HeadConfig(kind="linear"))]
    spec = JointSpec(tagger_head=HeadConfig(kind="linear"), lora=LoraSettings(r=2, alpha=4))
    args = TrainingArguments(epochs=6, batch_size=16, lr=1e-2, patience=6, progress=False)
    trained = train_joint(tasks, load_entities(str(tiny_entities_dir)), spec, args, Encoder.load(), tmp_path / "ner")
    adapters = {(path / "adapter" / "adapter_model.safetensors").read_bytes() for path in trained.paths.values()}
    assert len(adapters) == 1 and set(trained.paths) == {"sentiment", "topics", "ner"}
    assert trained.metrics["val"]["topics_accuracy"] == 1.0 and trained.metrics["val"]["sentiment_accuracy"] > 0.6
    joint = trained.classifiers["topics"].checkpoint.settings["joint"]
    assert joint["tasks"] == ["sentiment", "topics", "ner"] and set(joint["partners"]) == {"sentiment", "ner"}
    sentiment = TextClassifier.load(trained.paths["sentiment"], encoder=base_encoder)
    topic = TextClassifier.load(trained.paths["topics"], encoder=base_encoder)
    tagger = EntityTagger.load(trained.ner_path, encoder=base_encoder)
    plan = plan_passes({"entities": tagger, "sentiment": sentiment, "topics": topic})
    assert [(p.kind, p.readers) for p in plan.passes] == [("shared", ("entities", "sentiment", "topics"))]
    texts = ["oil prices climb as supply tightens", "pay 5 euros to Tom on Monday"]
    alone = topic.predict(texts)
    passes = []
    for model in (sentiment, topic, tagger):
        original = model.encoder._passes
        monkeypatch.setattr(model.encoder, "_passes", lambda *a, _o=original, **k: passes.append(1) or _o(*a, **k))
    together = analyze(texts, encoder=base_encoder, sentiment=sentiment, entities=tagger, topics=topic)
    assert len(passes) == 1
    assert [a.topic.label for a in together] == [p.label for p in alone]
    assert together[0].topic.label == "Energy | Oil"


@pytest.mark.slow
@pytest.mark.parametrize("widen", [None, 3])
def test_init_from_begins_from_a_classifiers_adapter_and_head(tiny_joint, tiny_entities_dir, tmp_path, widen):
    """…at its own rank, or widened (``widen_to``) to three times it, computing the same either way."""
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    start = TextClassifier.load(tiny_joint.paths["sentiment"])
    rows = [TextExample("shares soar", "positive"), TextExample("shares plunge", "negative"),
            TextExample("board meets", "neutral")]
    sentiment = TextDataset("tiny-sentiment", ["negative", "neutral", "positive"], rows, rows, rows)
    args = TrainingArguments(epochs=1, batch_size=16, lr=1e-12, patience=1, progress=False)  # too small to move anything
    task = SentenceTask("sentiment", sentiment, tmp_path / "sentiment", HeadConfig(kind="linear"))
    old = start.checkpoint.settings["lora"]
    spec = JointSpec(tagger_head=HeadConfig(kind="linear"), widen_to=widen and widen * old["r"])
    trained = train_joint([task], load_entities(str(tiny_entities_dir)), spec, args, Encoder.load(), tmp_path / "ner",
                          init_from=[start])
    settings = trained.classifiers["sentiment"].checkpoint.settings
    assert settings["joint"]["init_from"] == [str(start.checkpoint.path)]
    factor = widen or 1
    assert (settings["lora"]["r"], settings["lora"]["alpha"]) == (2 * factor, old["alpha"] * factor)
    assert settings["joint"].get("widened_to") == spec.widen_to
    texts = ["company beats estimates and raises guidance", "stock slumps on weak sales", "board names new chair"]
    got, want = trained.classifiers["sentiment"].predict(texts), start.predict(texts)
    assert [p.label for p in got] == [p.label for p in want]
    assert [p.confidence for p in got] == pytest.approx([p.confidence for p in want], abs=1e-5)
    if widen:
        with pytest.raises(ValueError, match="give init_from too"):
            train_joint([task], load_entities(str(tiny_entities_dir)), JointSpec(widen_to=8), args, Encoder.load(),
                        tmp_path / "ner2")


@pytest.mark.slow
def test_init_from_refuses_a_model_of_another_task_or_labels(tiny_joint, tiny_entities_dir, tmp_path):
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    start = TextClassifier.load(tiny_joint.paths["sentiment"])
    rows = [TextExample("shares soar", "up"), TextExample("shares plunge", "down")]
    data = TextDataset("d", ["down", "up"], rows, rows, rows)
    args = TrainingArguments(epochs=1, progress=False)
    for task, match in (("topics", "is a sentiment model"), ("sentiment", "other sentiment labels")):
        with pytest.raises(ValueError, match=match):
            train_joint([SentenceTask(task, data, tmp_path / task, HeadConfig(kind="linear"))],
                        load_entities(str(tiny_entities_dir)), JointSpec(), args, Encoder.load(), tmp_path / "n",
                        init_from=[start])


@pytest.mark.slow
def test_init_from_every_checkpoint_of_a_joint_run_goes_on_from_it(tiny_joint, tiny_entities_dir, tmp_path):
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    sentiment, tagger = TextClassifier.load(tiny_joint.paths["sentiment"]), EntityTagger.load(tiny_joint.ner_path)
    rows = [TextExample("shares soar", "positive"), TextExample("shares plunge", "negative"),
            TextExample("board meets", "neutral")]
    data = TextDataset("tiny-sentiment", ["negative", "neutral", "positive"], rows, rows, rows)
    args = TrainingArguments(epochs=1, batch_size=16, lr=1e-12, patience=1, progress=False)  # too small to move anything
    trained = train_joint([SentenceTask("sentiment", data, tmp_path / "sentiment", HeadConfig(kind="linear"))],
                          load_entities(str(tiny_entities_dir)), JointSpec(tagger_head=HeadConfig(kind="mlp")), args,
                          Encoder.load(), tmp_path / "ner", init_from=[tagger, sentiment])
    assert trained.tagger.head.config == tagger.head.config  # the tagger's own head, not the spec's
    assert trained.tagger.checkpoint.settings["joint"]["init_from"] == [str(tiny_joint.ner_path),
                                                                        str(tiny_joint.paths["sentiment"])]
    texts = ["send 20 pounds to Anna tomorrow", "wire 100 dollars to Maria next week", "stock slumps on weak sales"]
    spans = lambda found: [[(e.type, e.start, e.end) for e in es] for es in found]  # noqa: E731
    assert spans(trained.tagger.predict(texts)) == spans(tagger.predict(texts)) != [[], [], []]
    got, want = trained.classifiers["sentiment"].predict(texts), sentiment.predict(texts)
    assert [p.confidence for p in got] == pytest.approx([p.confidence for p in want], abs=1e-5)


@pytest.mark.slow
def test_init_from_refuses_two_models_of_a_task_other_adapters_and_a_second_tagger_start(
        tiny_joint, tiny_entities_dir, tmp_path):
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.training import joint
    from finetune.training.trainer import TrainingArguments

    sentiment, tagger = TextClassifier.load(tiny_joint.paths["sentiment"]), EntityTagger.load(tiny_joint.ner_path)
    rows = [TextExample("shares soar", "positive"), TextExample("shares plunge", "negative"),
            TextExample("board meets", "neutral")]
    data = TextDataset("tiny-sentiment", ["negative", "neutral", "positive"], rows, rows, rows)
    tasks = [SentenceTask("sentiment", data, tmp_path / "sentiment", HeadConfig(kind="linear"))]
    run = lambda **kw: joint.train_joint(tasks, load_entities(str(tiny_entities_dir)), JointSpec(),  # noqa: E731
                                         TrainingArguments(epochs=1, progress=False), Encoder.load(), tmp_path / "n", **kw)
    with pytest.raises(ValueError, match="two sentiment models"):
        run(init_from=[sentiment, sentiment])
    with pytest.raises(ValueError, match="drop --warm-start"):
        run(init_from=[sentiment, tagger], teacher=tagger, warm_start=True)
    tagger.__dict__["adapter_digest"] = "another adapter"  # the cached digest, as if its weights differed
    with pytest.raises(ValueError, match="must share one adapter"):
        run(init_from=[sentiment, tagger])


def test_joint_loss_mixes_a_teachers_probabilities_into_taught_rows_only():
    n_tags, n_words = 3, 2
    blocks = task_blocks(n_tags, [("sentiment", 2), ("topics", 3)])
    logits = torch.randn(3, 8, 1 + n_words)
    labels = torch.full((3, 1 + n_words), IGNORE)
    labels[0, 0], labels[1, 0], labels[2, 0] = 5 + 2, 5 + 0, 3 + 1  # two topic rows, one sentiment row
    # rows: one taught topic example, then the untaught topic and sentiment rows (sizes: 0 sentiment, 1 topics)
    soft = soft_columns(3, blocks, n_tags, {"topics": torch.tensor([[0.1, 0.2, 0.7]])}, [0, 1])
    assert torch.allclose(soft, torch.tensor([[0, 0, 0.1, 0.2, 0.7], [0] * 5, [0] * 5]))
    taught = -(torch.tensor([0.1, 0.2, 0.7]) * F.log_softmax(logits[0, 5:8, 0], -1)).sum()
    gold = F.cross_entropy(logits[:2, 5:8, 0], torch.tensor([2, 0]), reduction="none")
    topics = ((0.75 * gold[0] + 0.25 * taught) + gold[1]) / 2  # the second topic row has no teacher
    expected = topics + F.cross_entropy(logits[2:, 3:5, 0], torch.tensor([1]))
    loss = joint_loss(n_tags, blocks=blocks, smoothings=[0.0, 0.0], distil_weight=0.25)
    assert torch.allclose(loss(logits, torch.cat([labels.float(), soft], dim=1)), expected)
    plain = F.cross_entropy(logits[:2, 5:8, 0], torch.tensor([2, 0])) + F.cross_entropy(logits[2:, 3:5, 0], torch.tensor([1]))
    assert torch.allclose(loss(logits, labels), plain)  # class ids only: no teacher term


class _Classifier:
    """A sentiment 'teacher' whose logits are fixed per text: it calls every text about shares positive."""

    task = "sentiment"
    labels = ["positive", "negative", "neutral"]  # not sorted, as a checkpoint may store them
    checkpoint = type("Checkpoint", (), {"path": "sentiment-teacher"})()

    def encode(self, texts, *, progress=False):
        return torch.tensor([[1.0 if "shares" in t else 0.0] for t in texts])

    def logits(self, features):
        return features * torch.tensor([[4.0, 0.0, 0.0]]) + (1 - features) * torch.tensor([[0.0, 0.0, 4.0]])


def test_teacher_probabilities_follow_the_runs_label_order_and_temperature():
    probs = teacher_probabilities(_Classifier(), ["shares soar", "board meets"], ["negative", "neutral", "positive"])
    assert probs.argmax(-1).tolist() == [2, 1] and torch.allclose(probs.sum(-1), torch.ones(2))
    softer = teacher_probabilities(_Classifier(), ["shares soar"], ["negative", "neutral", "positive"], temperature=4.0)
    assert softer[0, 2] < probs[0, 2] and softer[0, 2] == pytest.approx(torch.softmax(torch.tensor([0.0, 0, 1]), 0)[2])
    with pytest.raises(ValueError, match="other labels than the data"):
        teacher_probabilities(_Classifier(), ["shares soar"], ["down", "up"])


@pytest.mark.slow
def test_a_teacher_classifier_teaches_the_shared_adapters_sentence_head(tiny_entities_dir, tmp_path):
    from finetune.data.loaders import TextDataset, TextExample, load_entities
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.models.lora import LoraSettings
    from finetune.training.joint import train_joint
    from finetune.training.trainer import TrainingArguments

    # Gold calls every shares text negative; the teacher calls them positive. Taught with weight 1,
    # the student follows the teacher on texts like those.
    rows = [TextExample("shares soar after record profit", "negative"), TextExample("shares rally on strong sales", "negative"),
            TextExample("board to meet on Thursday", "neutral"), TextExample("company beats estimates", "positive")]
    data = TextDataset("tiny-sentiment", ["negative", "neutral", "positive"], rows * 4, rows, rows)
    spec = JointSpec(tagger_head=HeadConfig(kind="linear"), lora=LoraSettings(r=2, alpha=4), distil_weight=1.0,
                     distil_temperature=0.5)
    args = TrainingArguments(epochs=6, batch_size=16, lr=1e-2, patience=6, progress=False)
    task = SentenceTask("sentiment", data, tmp_path / "sentiment", HeadConfig(kind="linear"), smoothing=0.0)
    trained = train_joint([task], load_entities(str(tiny_entities_dir)), spec, args, Encoder.load(), tmp_path / "ner",
                          distil_from=[_Classifier()])
    assert [p.label for p in trained.classifiers["sentiment"].predict(["shares soar after record profit"])] == ["positive"]
    joint = trained.classifiers["sentiment"].checkpoint.settings["joint"]
    assert joint["distil_from"] == {"sentiment": "sentiment-teacher"} and joint["distil_weight"] == 1.0
    assert joint["distil_covered"] == {"sentiment": len(rows) * 4}
    with pytest.raises(ValueError, match="is a sentiment model; the run trains topics"):
        train_joint([SentenceTask("topics", data, tmp_path / "topics", HeadConfig(kind="linear"))],
                    load_entities(str(tiny_entities_dir)), spec, args, Encoder.load(), tmp_path / "ner2",
                    distil_from=[_Classifier()])
    with pytest.raises(ValueError, match="two sentiment teachers"):
        train_joint([task], load_entities(str(tiny_entities_dir)), spec, args, Encoder.load(), tmp_path / "ner3",
                    distil_from=[_Classifier(), _Classifier()])


def test_a_soft_label_file_teaches_the_task_whose_labels_it_holds(tmp_path):
    from finetune.data.loaders import TextDataset, TextExample
    from finetune.data.soft_labels import SoftExample, write_soft_labels
    from finetune.models.heads import HeadConfig
    from finetune.training.joint import _distil_targets

    rows = [TextExample("shares soar", "negative"), TextExample("board meets", "neutral")]
    data = TextDataset("tiny", ["negative", "neutral", "positive"], rows, rows, rows)
    topics = TextDataset("tiny-topics", ["Fed", "M&A"], [TextExample("deal done", "M&A")], [], [])
    tasks = [SentenceTask("sentiment", data, tmp_path / "s", HeadConfig(kind="linear")),
             SentenceTask("topics", topics, tmp_path / "t", HeadConfig(kind="linear"))]
    labels = {"sentiment": ["negative", "neutral", "positive"], "topics": ["Fed", "M&A"]}
    path = tmp_path / "soft.jsonl"
    write_soft_labels(path, [SoftExample("shares soar", {"negative": 0.1, "neutral": 0.1, "positive": 0.8})])
    taught, covered = _distil_targets([path], tasks, labels, 1.0)
    assert list(taught) == ["sentiment"] and covered == {"sentiment": 1}
    assert torch.allclose(taught["sentiment"], torch.tensor([[0.1, 0.1, 0.8], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="two sentiment teachers"):
        _distil_targets([path, _Classifier()], tasks, labels, 1.0)
    other = tmp_path / "other.jsonl"
    write_soft_labels(other, [SoftExample("x", {"up": 0.5, "down": 0.5})])
    with pytest.raises(ValueError, match="those of no task the run trains"):
        _distil_targets([other], tasks, labels, 1.0)

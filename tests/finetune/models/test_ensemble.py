import json

import numpy as np
import pytest
from typer.testing import CliRunner

from finetune.models.checkpoint import CheckpointError, load_checkpoint
from finetune.models.classifier import TextClassifier
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.data.loaders import TextDataset, TextExample
from finetune.models.encoder import FeatureCache
from finetune.models.ensemble import ClassifierEnsemble, is_ensemble, save_ensemble, validation_scores
from finetune.models.loading import load_classifier
from finetune.models.heads import HeadConfig
from finetune.training.trainer import TrainingArguments

ROWS = {"positive": ["shares soar after record profit", "stock rallies on strong sales"],
        "negative": ["shares plunge after profit warning", "stock slumps on weak sales"],
        "neutral": ["annual meeting set for May", "board names new chair"]}
TEXTS = [t for some in ROWS.values() for t in some]
LABELS = [label for label, some in ROWS.items() for _ in some]


@pytest.fixture(scope="module")
def frozen_sentiment(base_encoder, tmp_path_factory):
    """A frozen-feature sentiment classifier on the tiny headlines."""
    root = tmp_path_factory.mktemp("frozen-sentiment")
    examples = [TextExample(t, label) for t, label in zip(TEXTS, LABELS)]
    data = TextDataset("tiny", sorted(ROWS), examples, examples, examples)
    args = TrainingArguments(epochs=20, batch_size=8, lr=1e-2, patience=20, progress=False)
    return train_classifier(data, ClassifierSpec(task="sentiment", head=HeadConfig(kind="linear")), args,
                            base_encoder, root / "model", cache=FeatureCache(root / "cache")).path


@pytest.fixture()
def ensemble_dir(frozen_sentiment, tiny_joint, tmp_path):
    """A frozen member and a LoRA member (the jointly trained sentiment model), weights 1 and 3."""
    return save_ensemble([frozen_sentiment, tiny_joint.paths["sentiment"]], tmp_path / "ensemble", weights=[1, 3])


def test_probabilities_are_the_weighted_mean_of_the_members(ensemble_dir, frozen_sentiment, tiny_joint, base_encoder):
    ensemble = ClassifierEnsemble.load(ensemble_dir, encoder=base_encoder)
    frozen = TextClassifier.load(frozen_sentiment, encoder=base_encoder)
    lora = TextClassifier.load(tiny_joint.paths["sentiment"], encoder=base_encoder)
    texts = TEXTS + [""]

    def by_label(model):
        return np.array([[p.probs[label] for label in ensemble.labels] for p in model.predict(texts)])

    expected = 0.25 * by_label(frozen) + 0.75 * by_label(lora)
    got = ensemble.predict(texts)
    assert np.allclose([[p.probs[label] for label in ensemble.labels] for p in got], expected, atol=1e-5)
    assert [p.label for p in got] == [ensemble.labels[i] for i in expected.argmax(1)]
    assert ensemble.weights == [0.25, 0.75] and ensemble.predict([]) == []


def test_members_are_copied_in_and_the_folder_can_move(ensemble_dir, tmp_path):
    record = json.loads((ensemble_dir / "ensemble.json").read_text())
    assert record["format"] == "qagent-ensemble/1" and record["task"] == "sentiment"
    assert all((ensemble_dir / member / "config.json").is_file() for member in record["members"])
    moved = ensemble_dir.rename(tmp_path / "moved")
    assert is_ensemble(moved) and len(ClassifierEnsemble.load(moved).members) == 2


def test_encode_then_probabilities_matches_predict(ensemble_dir, base_encoder):
    """The evaluation path (features of every member side by side) gives predict's numbers."""
    ensemble = ClassifierEnsemble.load(ensemble_dir, encoder=base_encoder)
    features = ensemble.encode(TEXTS)
    assert features.shape[1] == sum(m.head.config.in_features for m in ensemble.members)
    assert np.allclose(ensemble.probabilities(features),
                       [[p.probs[label] for label in ensemble.labels] for p in ensemble.predict(TEXTS)], atol=1e-6)
    with pytest.raises(ValueError, match="side by side"):
        ensemble.probabilities(features[:, :10])
    with pytest.raises(ValueError, match="call predict"):
        ensemble.predict_features(features)


def test_validation_scores_report_members_and_ensemble(ensemble_dir, base_encoder):
    ensemble = ClassifierEnsemble.load(ensemble_dir, encoder=base_encoder)
    scores = validation_scores(ensemble, TEXTS, LABELS)
    assert scores["examples"] == len(TEXTS) and len(scores["members"]) == 2
    predicted = [p.label for p in ensemble.predict(TEXTS)]
    assert scores["ensemble"]["accuracy"] == pytest.approx(np.mean([p == g for p, g in zip(predicted, LABELS)]))


def test_load_classifier_takes_either_kind(ensemble_dir, frozen_sentiment):
    assert isinstance(load_classifier(ensemble_dir, task="sentiment"), ClassifierEnsemble)
    assert isinstance(load_classifier(frozen_sentiment, task="sentiment"), TextClassifier)
    with pytest.raises(CheckpointError, match="ensemble of models"):
        load_checkpoint(ensemble_dir)  # a single-model loader says what the folder is


def test_bad_ensembles_are_refused(frozen_sentiment, tiny_joint, ensemble_dir, tmp_path):
    with pytest.raises(ValueError, match="at least two"):
        save_ensemble([frozen_sentiment], tmp_path / "one")
    with pytest.raises(ValueError, match="one positive weight per member"):
        save_ensemble([frozen_sentiment, tiny_joint.paths["sentiment"]], tmp_path / "w", weights=[1, 0])
    with pytest.raises(ValueError, match="is one of the members"):
        save_ensemble([frozen_sentiment, tiny_joint.paths["sentiment"]], frozen_sentiment)
    with pytest.raises(CheckpointError, match="not a text classifier"):
        save_ensemble([frozen_sentiment, tiny_joint.ner_path], tmp_path / "mixed")
    record = json.loads((ensemble_dir / "ensemble.json").read_text())
    (ensemble_dir / "ensemble.json").write_text(json.dumps({**record, "members": ["../elsewhere", *record["members"][1:]]}))
    with pytest.raises(CheckpointError, match=r"ensemble\.json does not match its checksum"):
        ClassifierEnsemble.load(ensemble_dir)
    (ensemble_dir / "checksums.json").unlink()  # unrecorded: the member paths are checked on their own
    with pytest.raises(CheckpointError, match="inside the ensemble"):
        ClassifierEnsemble.load(ensemble_dir)


def test_cli_builds_scores_and_evaluates_an_ensemble(frozen_sentiment, tiny_joint, tmp_path, monkeypatch):
    from agent.cli import app

    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    data = tmp_path / "headlines.csv"
    data.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in zip(TEXTS * 3, LABELS * 3)))
    out = tmp_path / "ens"
    runner = CliRunner()
    built = runner.invoke(app, ["finetune", "ensemble", str(frozen_sentiment), str(tiny_joint.paths["sentiment"]),
                                "--out", str(out), "--data", str(data), "--val-fraction", "0.34", "--json"])
    assert built.exit_code == 0, built.output
    summary = json.loads(built.stdout)
    assert summary["validation"]["examples"] == 6 and set(summary["validation"]) >= {"members", "ensemble"}
    assert json.loads((out / "ensemble.json").read_text())["metrics"]["validation"] == summary["validation"]
    report = runner.invoke(app, ["eval", "sentiment", str(out), "--data", str(data), "--split", "train",
                                 "--out", str(tmp_path / "eval"), "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["n"] == 14  # the file's train split: 10 % each carved for validation and test
    assert (tmp_path / "eval" / "confusion_matrix.png").is_file()
    bad = runner.invoke(app, ["finetune", "ensemble", str(frozen_sentiment), str(tmp_path / "missing"),
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "Traceback" not in bad.output and "missing" in bad.output


def test_the_nlu_runners_take_an_ensemble(ensemble_dir, tiny_joint, base_encoder):
    """The news monitor (analyze) and the assistant (NLU, passes on a worker thread) accept an
    ensemble wherever they accept a sentiment classifier."""
    from agent.nlu import NLU
    from finetune.models.passes import analyze
    from finetune.models.tagger import EntityTagger

    ensemble = load_classifier(ensemble_dir, task="sentiment", encoder=base_encoder)
    tagger = EntityTagger.load(tiny_joint.ner_path, encoder=base_encoder)
    expected = [p.label for p in ensemble.predict(TEXTS)]
    analyses = analyze(TEXTS, encoder=base_encoder, sentiment=ensemble, entities=tagger)
    assert [a.sentiment.label for a in analyses] == expected
    understood = NLU(base_encoder, entities=tagger, sentiment=ensemble).understand_batch(TEXTS)
    assert [u.sentiment for u in understood] == expected


def test_an_ensemble_of_topic_models_is_scored_on_topic_data(base_encoder, tmp_path):
    """Topic members read their validation with the topic loader: ``fin_topics`` by name, its
    labels as ids turned into topic names."""
    from finetune.data.tagging import DataError
    from finetune.training.ensemble import EnsembleData, build_ensemble

    topics = {"Earnings": ["Acme profit beats estimates", "Quarterly revenue falls short"],
              "Energy | Oil": ["Oil jumps as OPEC cuts output", "Crude slides on rising stocks"]}
    rows = [TextExample(t, label) for label, some in topics.items() for t in some]
    data = TextDataset("tiny-topics", sorted(topics), rows, rows, rows)
    args = TrainingArguments(epochs=30, batch_size=4, lr=1e-2, patience=30, progress=False)
    members = [train_classifier(data, ClassifierSpec(task="topics", head=HeadConfig(kind=kind)), args, base_encoder,
                                tmp_path / kind, cache=FeatureCache(tmp_path / "cache")).path for kind in ("linear", "mlp")]
    root = tmp_path / "data" / "fin_topics"
    root.mkdir(parents=True)
    (root / "labels.json").write_text(json.dumps(sorted(topics)))
    lines = "".join(f"{ex.text},{sorted(topics).index(ex.label)}\n" for ex in rows * 5)
    for name in ("train.csv", "valid.csv"):
        (root / name).write_text("text,label\n" + lines)
    summary = build_ensemble(members, tmp_path / "ens", progress=False,
                             data=EnsembleData(data="fin_topics", data_dir=tmp_path / "data", val_fraction=0.2))
    assert summary["task"] == "topics" and summary["validation"]["data"] == "fin_topics"
    assert summary["validation"]["examples"] == 4 and summary["validation"]["ensemble"]["accuracy"] == 1.0
    with pytest.raises(DataError, match="missing.csv"):
        build_ensemble(members, tmp_path / "ens2", data=EnsembleData(data=str(tmp_path / "missing.csv")))


def test_a_member_with_a_word_ngram_part_reads_the_texts(frozen_sentiment, tiny_joint, base_encoder, tmp_path):
    """The ensemble hands the texts to a member's word n-gram part, on predict and on the evaluation path."""
    import shutil

    from finetune.models.integrity import update_checksums
    from finetune.models.lexical import LEXICAL, LEXICAL_WEIGHTS, LexicalModel

    worded = tmp_path / "worded"
    shutil.copytree(frozen_sentiment, worded)
    LexicalModel.fit(TEXTS, LABELS, sorted(ROWS), min_df=1, c=10.0).with_weight(1.0).save(worded)
    update_checksums(worded, [LEXICAL, LEXICAL_WEIGHTS])
    ensemble = ClassifierEnsemble.load(save_ensemble([worded, tiny_joint.paths["sentiment"]], tmp_path / "ens"),
                                       encoder=base_encoder)
    member = TextClassifier.load(worded, encoder=base_encoder)
    assert member.lexical is not None and ensemble.members[0].lexical is not None
    texts = TEXTS + ["board names new chair after shares plunge"]
    features = ensemble.encode(texts)
    member_probs = ensemble.member_probabilities(features, texts=texts)[0]
    own_features = member.encode(texts)
    own = member.probabilities(own_features, texts=texts)
    columns = [member.labels.index(label) for label in ensemble.labels]
    assert np.allclose(member_probs, own[:, columns], atol=1e-5)
    assert not np.allclose(member_probs, member.head_probabilities(own_features)[:, columns], atol=1e-3)
    assert np.allclose(ensemble.probabilities(features, texts=texts),
                       [[p.probs[label] for label in ensemble.labels] for p in ensemble.predict(texts)], atol=1e-6)
    with pytest.raises(ValueError, match="pass texts="):
        ensemble.probabilities(features)

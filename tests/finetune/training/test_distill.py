"""Distillation: soft targets, their loss, soft-label files, and the classifier recipe trained with them."""

import csv
import json

import pytest
import torch

from finetune.data.loaders import DataError
from finetune.data.soft_labels import (SoftExample, read_soft_labels, read_texts, soft_label_names, write_soft_labels,
                                      write_top_labels)
from finetune.models.encoder import FeatureCache
from finetune.models.heads import HeadConfig
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.training.distill import file_probabilities, soft_cross_entropy, target_rows, teacher_soft_labels
from finetune.training.trainer import TrainingArguments
from text_data import tiny_intents

LABELS = ["balance", "card_lost", "transfer"]


def test_hard_rows_are_smoothed_one_hot_and_soft_rows_follow_the_label_order():
    soft = [SoftExample("x", {"transfer": 0.5, "balance": 0.25, "card_lost": 0.25})]
    rows = target_rows(torch.tensor([1, 0]), soft, LABELS, label_smoothing=0.3)
    assert torch.allclose(rows, torch.tensor([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.25, 0.25, 0.5]]))


def test_soft_cross_entropy_equals_cross_entropy_on_the_same_targets():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.3, -0.2]])
    hard = torch.tensor([0, 2])
    loss = soft_cross_entropy(0.1)
    expected = torch.nn.functional.cross_entropy(logits, hard, label_smoothing=0.1)
    assert torch.isclose(loss(logits, target_rows(hard, [], LABELS, 0.1)), expected)
    assert torch.isclose(loss(logits, hard), expected)  # validation keeps class ids


def test_soft_label_files_round_trip_and_bad_ones_are_one_line_errors(tmp_path):
    path = tmp_path / "soft.jsonl"
    examples = [SoftExample("Shares rose.", {"balance": 0.2, "card_lost": 0.3, "transfer": 0.5})]
    assert write_soft_labels(path, examples) == 1
    assert read_soft_labels(path, LABELS) == examples
    with pytest.raises(DataError, match="differ from the model's"):
        read_soft_labels(path, ["negative", "neutral", "positive"])
    path.write_text(json.dumps({"text": "a", "probs": {"balance": 0.9, "card_lost": 0.3, "transfer": 0.0}}) + "\n")
    with pytest.raises(DataError, match=r"soft.jsonl:1: probs must sum to 1"):
        read_soft_labels(path, LABELS)
    path.write_text("{oops\n")
    with pytest.raises(DataError, match="soft.jsonl:1: not JSON"):
        read_soft_labels(path, LABELS)
    with pytest.raises(DataError, match="write one with `agent finetune soft-labels`"):
        read_soft_labels(tmp_path / "none.jsonl", LABELS)


def test_texts_to_label_come_from_a_csv_column_or_lines(tmp_path):
    (tmp_path / "h.csv").write_text('text,label\n"Oil rose, again",3\nGold fell,1\n', encoding="utf-8")
    (tmp_path / "h.txt").write_text("one\n\ntwo\n", encoding="utf-8")
    assert read_texts(tmp_path / "h.csv") == ["Oil rose, again", "Gold fell"]
    assert read_texts(tmp_path / "h.txt") == ["one", "two"]
    with pytest.raises(DataError, match="no column 'headline'.*--text-column"):
        read_texts(tmp_path / "h.csv", "headline")


@pytest.mark.slow
def test_a_student_learns_the_teacher_on_texts_without_labels(base_encoder, tmp_path):
    args = TrainingArguments(epochs=30, batch_size=8, lr=0.05, patience=40, progress=False)
    spec = ClassifierSpec(task="sentiment", head=HeadConfig(kind="linear"))
    cache = FeatureCache(tmp_path / "cache")
    teacher = train_classifier(tiny_intents(), spec, args, base_encoder, tmp_path / "teacher", cache=cache)
    unlabelled = ["my debit card was stolen this morning", "please move 20 euros to my savings account",
                  "how much is left on my account today"]
    soft = teacher_soft_labels(teacher.classifier, unlabelled)
    assert [max(ex.probs, key=ex.probs.get) for ex in soft] == [p.label for p in teacher.classifier.predict(unlabelled)]
    student = train_classifier(tiny_intents(), spec, args, base_encoder, tmp_path / "student", cache=cache, soft=soft)
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["training"]["soft_examples"] == 3
    assert [p.label for p in student.classifier.predict(unlabelled)] == [max(ex.probs, key=ex.probs.get) for ex in soft]
    with pytest.raises(ValueError, match="cover exactly the labels"):
        train_classifier(tiny_intents(), spec, args, base_encoder, tmp_path / "x", cache=cache,
                         soft=[SoftExample("a", {"negative": 1.0})])


def test_a_soft_label_file_teaches_the_texts_it_holds_at_the_runs_temperature(tmp_path):
    path = tmp_path / "soft.jsonl"
    write_soft_labels(path, [SoftExample("rates rise", {"transfer": 0.5, "balance": 0.25, "card_lost": 0.25}),
                             SoftExample("card gone", {"transfer": 0.1, "balance": 0.1, "card_lost": 0.8})])
    assert soft_label_names(path) == LABELS
    probs, covered = file_probabilities(path, ["card gone", " rates rise ", "unseen text"], LABELS)
    assert covered == 2
    assert torch.allclose(probs, torch.tensor([[0.1, 0.8, 0.1], [0.25, 0.25, 0.5], [0.0, 0.0, 0.0]]))
    # T = 2 softens as logits / 2 would: p ** 0.5, renormalised
    softer, _ = file_probabilities(path, ["rates rise"], LABELS, temperature=2.0)
    root = torch.tensor([0.25, 0.25, 0.5]).sqrt()
    assert torch.allclose(softer[0], root / root.sum())
    with pytest.raises(DataError, match="holds none of the 1 training texts"):
        file_probabilities(path, ["something else"], LABELS)
    with pytest.raises(DataError, match="differ from the model's"):
        file_probabilities(path, ["rates rise"], ["down", "up"])


@pytest.mark.parametrize("content", ["", "not json\n", "{\"text\": \"x\"}\n"])
def test_a_file_that_is_not_soft_labels_names_itself(content, tmp_path):
    path = tmp_path / "teacher.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match="teacher.jsonl"):
        soft_label_names(path)


def test_top_labels_keep_each_texts_most_probable_label_above_the_floor(tmp_path):
    soft = tmp_path / "soft.jsonl"
    write_soft_labels(soft, [SoftExample("Gold hits a record", {"metals": 0.8, "fx": 0.15, "rates": 0.05}),
                             SoftExample("Fed holds, dollar slips", {"metals": 0.1, "fx": 0.35, "rates": 0.55}),
                             SoftExample("Yen at a 30-year low", {"metals": 0.0, "fx": 0.6, "rates": 0.4})])
    assert write_top_labels(soft, tmp_path / "all.csv") == 3
    rows = list(csv.DictReader((tmp_path / "all.csv").read_text(encoding="utf-8").splitlines()))
    assert [(r["text"], r["label"]) for r in rows] == [
        ("Gold hits a record", "metals"), ("Fed holds, dollar slips", "rates"), ("Yen at a 30-year low", "fx")]
    assert float(rows[0]["prob"]) == pytest.approx(0.8)
    assert write_top_labels(soft, tmp_path / "sure.csv", min_prob=0.6) == 2
    kept = [r["text"] for r in csv.DictReader((tmp_path / "sure.csv").read_text(encoding="utf-8").splitlines())]
    assert kept == ["Gold hits a record", "Yen at a 30-year low"]
    with pytest.raises(ValueError, match="min_prob"):
        write_top_labels(soft, tmp_path / "x.csv", min_prob=1.5)


def test_texts_with_unicode_line_separators_stay_one_record(tmp_path):
    # Headlines carry U+0085 and U+2028 (copied from web pages); JSON keeps them raw, and a
    # reader that split on them would cut the record in two.
    texts = ["Tiffany buys LVMH\x85 #Stock", "Rates\u2028rise again"]
    soft = tmp_path / "soft.jsonl"
    write_soft_labels(soft, [SoftExample(text, {"a": 0.25, "b": 0.75}) for text in texts])
    assert [ex.text for ex in read_soft_labels(soft, ["a", "b"])] == texts
    assert write_top_labels(soft, tmp_path / "top.csv") == 2
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert read_texts(tmp_path / "texts.txt") == texts

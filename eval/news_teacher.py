"""A sentiment teacher for news text, and its soft labels on unlabelled headlines (distillation).

The teacher is all-mpnet-base-v2 (110 M parameters, from its five pypi part packages:
:mod:`finetune.models.packaged_encoders`) with a head on its frozen features, trained on the
finance tweets; its probabilities on headlines that carry no sentiment label (the texts of
``fin_topics`` train, never its valid split) become a student's extra training targets::

    python -m eval.news_teacher --out runs/news-teacher            # teacher + soft.jsonl + report.json
    agent finetune sentiment --soft-labels runs/news-teacher/soft.jsonl … --out runs/student
    agent eval sentiment runs/student --data news-dev

``--teacher-train`` / ``--teacher-val`` / ``--headlines`` take seeded, stratified subsamples: mpnet
encodes a few texts a second on a busy 2-core machine, so a pilot keeps them small. The teacher is
scored on ``news-dev`` only (the set for choosing); ``news`` is left for final measurement.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from eval.classification import evaluate_classifier, load_eval_data
from finetune.data.loaders import TextDataset, TextExample, load_sentiment, resolve_data_dir
from finetune.data.soft_labels import read_texts, write_soft_labels
from finetune.models.encoder import Encoder, EncoderConfig, FeatureCache
from finetune.models.heads import HeadConfig
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.training.distill import teacher_soft_labels
from finetune.training.trainer import TrainingArguments


def subsample(examples: list[TextExample], size: int | None, seed: int) -> list[TextExample]:
    """``size`` examples drawn per label in proportion (seeded), or all of them when ``size`` is None."""
    if size is None or size >= len(examples):
        return list(examples)
    rng = random.Random(seed)
    by_label: dict[str, list[TextExample]] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    picked: list[TextExample] = []
    for label in sorted(by_label):
        group = by_label[label]
        picked += rng.sample(group, max(1, round(size * len(group) / len(examples))))
    return sorted(picked, key=examples.index)


def headline_texts(data_dir: str | Path | None, size: int | None, seed: int) -> list[str]:
    """Texts of ``fin_topics/train.csv`` (labels ignored): a seeded sample of ``size``, or all."""
    texts = read_texts(resolve_data_dir(data_dir) / "fin_topics" / "train.csv")
    if size is not None and size < len(texts):
        texts = random.Random(seed).sample(texts, size)
    return texts


def build_teacher(out: Path, *, teacher_train: int | None, teacher_val: int | None, headlines: int | None,
                  epochs: int, seed: int, data_dir: str | Path | None, encoder: Encoder) -> dict[str, Any]:
    """Train the teacher into ``out/teacher``, score it on news-dev, write ``out/soft.jsonl``;
    returns the report (also written to ``out/report.json``)."""
    tweets = load_sentiment("fin_tweets", data_dir=data_dir, seed=0)
    data = TextDataset("fin_tweets", tweets.labels, subsample(tweets.train, teacher_train, seed),
                       subsample(tweets.validation, teacher_val, seed), [])
    spec = ClassifierSpec(task="sentiment", head=HeadConfig(kind="mlp", hidden=256, dropout=0.1))
    args = TrainingArguments(epochs=epochs, batch_size=64, lr=1e-3, patience=6, label_smoothing=0.1, seed=seed)
    trained = train_classifier(data, spec, args, encoder, out / "teacher",
                               command="python -m eval.news_teacher (teacher)")
    news_dev = evaluate_classifier(trained.classifier, load_eval_data("sentiment", "news-dev"),
                                   out=out / "teacher-news-dev", cache=FeatureCache())
    texts = headline_texts(data_dir, headlines, seed)
    count = write_soft_labels(out / "soft.jsonl", teacher_soft_labels(trained.classifier, texts, progress=True))
    report = {
        "teacher": str(trained.path), "encoder": encoder.config.model_id,
        "teacher_train_examples": len(data.train), "teacher_val_examples": len(data.validation),
        "teacher_val_macro_f1": trained.metrics["val_macro_f1"],
        "teacher_news_dev_accuracy": news_dev["accuracy"], "teacher_news_dev_macro_f1": news_dev["macro_f1"],
        "soft_labels": str(out / "soft.jsonl"), "soft_examples": count,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.news_teacher", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for teacher/, soft.jsonl and report.json")
    parser.add_argument("--teacher-train", type=int, default=None, help="tweets the teacher trains on (default all)")
    parser.add_argument("--teacher-val", type=int, default=None, help="validation tweets (default all 954)")
    parser.add_argument("--headlines", type=int, default=None, help="fin_topics train headlines to label (default all)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    encoder = Encoder.load(replace(EncoderConfig(model="mpnet"), max_length=args.max_length))
    report = build_teacher(args.out, teacher_train=args.teacher_train, teacher_val=args.teacher_val,
                           headlines=args.headlines, epochs=args.epochs, seed=args.seed, data_dir=args.data_dir,
                           encoder=encoder)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""A topic probe: a linear topic head on the news pair's shared adapter, to time the monitor with topics.

The monitor's topic model reads the encoder pass its sentiment model and tagger share, so what it
adds to a headline's cost is one more head on features already computed. This builds a checkpoint
of exactly that shape from ``fin_topics`` (a linear head fitted on the adapted encoder's features of
``--rows`` training headlines; the adapter is copied unchanged, so ``plan_passes`` groups it with
``news-sentiment`` and ``news-ner``), so ``agent bench monitor --topic-model DIR`` and the monitor's
tests can run with topics where no topic model is installed. It is no substitute for the shipped
topic model (``agent/assets/models/news-topics``): it sees few headlines and a frozen adapter, and
its held-out accuracy (printed, on 10 % of the rows) shows it.

Run with ``python -m eval.topic_probe --out DIR``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_topics(data_dir: Path, rows: int, seed: int) -> tuple[list[str], list[int], list[str]]:
    """``rows`` shuffled training headlines of ``fin_topics``, their label ids, and the label names."""
    folder = Path(data_dir) / "fin_topics"
    if not (folder / "train.csv").is_file():
        raise FileNotFoundError(f"{folder / 'train.csv'} not found; point --data-dir at the shared data sets")
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    with (folder / "train.csv").open(encoding="utf-8") as handle:
        examples = [(r["text"], int(r["label"])) for r in csv.DictReader(handle)]
    random.Random(seed).shuffle(examples)
    examples = examples[:rows]
    return [t for t, _ in examples], [y for _, y in examples], labels


def build_probe(data_dir: Path, out: Path, *, rows: int = 2000, seed: int = 0, epochs: int = 60) -> dict[str, Any]:
    """Fit the probe on the news sentiment model's adapted encoder and save it into ``out``."""
    import torch

    from agent.shipped import NEWS_SENTIMENT_MODEL
    from finetune.models.heads import HeadConfig
    from finetune.models.loading import load_classifier
    from finetune.training.recipe import build_head, save_model

    texts, targets, labels = read_topics(data_dir, rows, seed)
    # Loaded on its own, the model's encoder has its checkpoint's settings (max_length…) and its adapter.
    encoder = load_classifier(NEWS_SENTIMENT_MODEL).encoder
    with torch.no_grad():
        features = encoder.encode(texts)
    y = torch.tensor(targets)
    n_train = len(texts) * 9 // 10
    head = build_head(HeadConfig(kind="linear", dropout=0.0), encoder, len(labels), "exact", seed=seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(epochs):
        head.train()
        order = torch.randperm(n_train)
        for lo in range(0, n_train, 64):
            batch = order[lo : lo + 64]
            loss = torch.nn.functional.cross_entropy(head(features[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.eval()
    with torch.no_grad():
        accuracy = (head(features[n_train:]).argmax(-1) == y[n_train:]).float().mean().item()
    # "intents": the slot of a plain text classifier; the label names say what it classifies.
    save_model(out, task="intents", head=head, labels=labels, encoder=encoder,
               training={"probe": "linear head on the news-sentiment adapter (frozen)", "rows": rows, "seed": seed,
                         "epochs": epochs}, settings={}, metrics={"heldout_accuracy": round(accuracy, 4)},
               command=f"python -m eval.topic_probe --out {out} --rows {rows} --seed {seed}", with_adapter=True)
    return {"out": str(out), "rows": rows, "heldout_accuracy": round(accuracy, 4), "labels": len(labels)}


def main(argv: Sequence[str] | None = None) -> None:
    from finetune.data.loaders import resolve_data_dir

    parser = argparse.ArgumentParser(prog="python -m eval.topic_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the probe checkpoint")
    parser.add_argument("--rows", type=int, default=2000, help="fin_topics training headlines used (10 %% held out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the shared data sets")
    args = parser.parse_args(argv)
    if args.rows < 20:
        parser.error(f"--rows must be >= 20, got {args.rows}")
    try:
        result = build_probe(resolve_data_dir(args.data_dir), args.out, rows=args.rows, seed=args.seed)
    except (OSError, ValueError) as exc:
        parser.exit(1, f"error: {exc}\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

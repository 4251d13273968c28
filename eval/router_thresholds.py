"""Choose the router's thresholds on validation data and write ``agent/assets/router.json``.

Run: ``python -m eval.router_thresholds [--data-dir ../shared/data] [--out agent/assets/router.json]``

- ``clarify_margin``: on the BANKING77 validation split (carved from train exactly as the shipped
  intents model's command did: ``--val-fraction 0.05 --seed 0``), the largest gap between the two
  most likely intents such that the queries the router would clarify (gap below it and top
  probability below ``clarify_below``) have a top intent that is right at most half the time,
  and are at most 5 % of queries. There a guess is a coin toss, so "this or that?" serves the
  customer better, without asking about every other question.
- ``handoff_negative``: on the finance-tweet validation split, the smallest probability of
  ``negative`` at which the sentiment model's negative calls are at least 90 % precise, so a
  handoff for anger is rarely a false alarm.
The other settings keep their documented defaults.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from agent.router import DEFAULT_CONFIG_FILE, RouterConfig

MARGINS = np.round(np.arange(0.01, 0.31, 0.01), 2)
THRESHOLDS = np.round(np.arange(0.5, 0.99, 0.01), 2)
MIN_PRECISION = 0.9


MAX_CLARIFY_RATE = 0.05


def choose_margin(probs: np.ndarray, labels: np.ndarray, below_confidence: float) -> tuple[float, dict[str, float]]:
    """Largest margin whose clarified cases have top-1 accuracy <= 0.5 (see module docstring)."""
    ranked = np.sort(probs, axis=1)
    margin = ranked[:, -1] - ranked[:, -2]
    unsure = ranked[:, -1] < below_confidence
    correct = probs.argmax(1) == labels
    top2 = (np.argsort(probs, axis=1)[:, -2:] == labels[:, None]).any(1)
    best, stats = float(MARGINS[0]), {}
    for m in MARGINS:
        below = (margin < m) & unsure
        if below.sum() >= 5 and correct[below].mean() <= 0.5 and below.mean() <= MAX_CLARIFY_RATE:
            best = float(m)
            stats = {"clarify_rate": float(below.mean()), "top1_accuracy_if_clarified": float(correct[below].mean()),
                     "top2_covers_if_clarified": float(top2[below].mean()),
                     "accuracy_if_answered": float(correct[~below].mean())}
    return best, stats


def choose_negative(prob_negative: np.ndarray, is_negative: np.ndarray) -> tuple[float, dict[str, float]]:
    """Smallest threshold with precision >= MIN_PRECISION on the validation split."""
    for t in THRESHOLDS:
        called = prob_negative >= t
        if called.sum() >= 5 and is_negative[called].mean() >= MIN_PRECISION:
            return float(t), {"precision": float(is_negative[called].mean()),
                              "recall": float(called[is_negative].mean()) if is_negative.any() else 0.0}
    return float(THRESHOLDS[-1]), {}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_CONFIG_FILE)
    args = parser.parse_args(argv)

    from agent.shipped import CHAT_SENTIMENT_MODEL, INTENTS_MODEL
    from finetune.models.classifier import TextClassifier
    from finetune.data.loaders import load_intents, load_sentiment
    from finetune.models.encoder import Encoder

    encoder = Encoder.load()
    intents = TextClassifier.load(INTENTS_MODEL, encoder=encoder)
    data = load_intents("banking77", data_dir=args.data_dir, val_fraction=0.05, seed=0)
    texts = [e.text for e in data.validation]
    features = intents.encode(texts, progress=True)
    probs = intents.probabilities(features, texts=texts)
    in_scope = [i for i, name in enumerate(intents.labels) if name != "out_of_scope"]
    labels = np.array([in_scope.index(intents.labels.index(e.label)) for e in data.validation])
    margin, margin_stats = choose_margin(probs[:, in_scope], labels, RouterConfig().clarify_below)

    sentiment = TextClassifier.load(CHAT_SENTIMENT_MODEL, encoder=encoder)  # the assistant's sentiment model
    tweets = load_sentiment("fin_tweets", data_dir=args.data_dir)
    s_texts = [e.text for e in tweets.validation]
    s_probs = sentiment.probabilities(sentiment.encode(s_texts, progress=True), texts=s_texts)
    negative = sentiment.labels.index("negative")
    threshold, negative_stats = choose_negative(
        s_probs[:, negative], np.array([e.label == "negative" for e in tweets.validation]))

    config = replace(RouterConfig(), clarify_margin=margin, handoff_negative=threshold,
                     source="python -m eval.router_thresholds")
    report = {"thresholds": config.to_dict(),
              "evidence": {"clarify_margin": {"data": f"banking77 validation ({len(labels)} queries)", **margin_stats},
                           "handoff_negative": {"data": f"fin_tweets validation ({len(tweets.validation)} tweets)",
                                                "min_precision": MIN_PRECISION, **negative_stats}}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

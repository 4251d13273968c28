"""Out-of-scope detection for intent classifiers: training examples and the abstention threshold.

Two mechanisms work together (Larson et al. 2019 compare both): an extra ``out_of_scope`` class
learnt from examples of what the assistant does not handle, and a confidence threshold below which
the classifier abstains. The threshold is chosen on validation data (in-scope validation queries
plus CLINC150 ``oos_val``), never on a test split.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune.data.loaders import OUT_OF_SCOPE, DataError, TextDataset, TextExample, resolve_data_dir

# CLINC150 domains that overlap a banking assistant's own intents: their queries are in scope
# for us, so they must never be taught as out-of-scope.
BANKING_DOMAINS = ("banking", "credit_cards")


@dataclass(frozen=True)
class OOSExamples:
    """Out-of-scope texts for training and for choosing the threshold."""

    train: list[TextExample]
    validation: list[TextExample]
    test: list[TextExample]


def clinc_oos_examples(
    clinc: TextDataset,
    *,
    data_dir: str | Path | None = None,
    per_intent: int = 10,
    exclude_domains: tuple[str, ...] = BANKING_DOMAINS,
) -> OOSExamples:
    """CLINC150 ``oos_*`` splits, with train padded by in-scope queries of non-banking domains.

    CLINC150's ``oos_train`` has only 100 queries; queries about cooking, travel or small talk
    (``per_intent`` of each of the 120 non-banking intents, the first ones in file order so the
    choice is reproducible) teach the ``out_of_scope`` class what "not banking" looks like.
    """
    if "oos_train" not in clinc.extra:
        raise DataError(f"{clinc.name} has no out-of-scope splits; use --oos-data clinc150")
    excluded = _domain_intents(data_dir, exclude_domains)
    taken: dict[str, int] = defaultdict(int)
    padding = []
    for example in clinc.train:
        if example.label in excluded or taken[example.label] >= per_intent:
            continue
        taken[example.label] += 1
        padding.append(TextExample(example.text, OUT_OF_SCOPE))
    return OOSExamples(
        train=list(clinc.extra["oos_train"]) + padding,
        validation=list(clinc.extra["oos_val"]),
        test=list(clinc.extra["oos_test"]),
    )


def _domain_intents(data_dir: str | Path | None, domains: tuple[str, ...]) -> set[str]:
    path = resolve_data_dir(data_dir) / "clinc150" / "domains.json"
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the CLINC150 domain list ({exc})") from None
    unknown = [d for d in domains if d not in mapping]
    if unknown:
        raise DataError(f"{path}: unknown domains {unknown}; it has {sorted(mapping)}")
    return {intent for d in domains for intent in mapping[d]}


def abstain(probs: np.ndarray, labels: list[str], threshold: float | None) -> np.ndarray:
    """Predicted label indices, with the ``out_of_scope`` index (or -1) where confidence < threshold."""
    predicted = probs.argmax(-1)
    if threshold is None:
        return predicted
    oos_index = labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in labels else -1
    return np.where(probs.max(-1) < threshold, oos_index, predicted)


def choose_threshold(
    in_probs: np.ndarray,
    in_targets: np.ndarray,
    oos_probs: np.ndarray,
    labels: list[str],
    *,
    min_oos_recall: float | None = None,
) -> tuple[float, dict[str, float]]:
    """Pick the abstention threshold on validation data.

    Args:
        in_probs: Class probabilities ``[N, C]`` of in-scope validation queries.
        in_targets: Their true label indices ``[N]``.
        oos_probs: Probabilities ``[M, C]`` of out-of-scope validation queries.
        labels: Class names in logit order (may include ``out_of_scope``).
        min_oos_recall: When given, the lowest threshold reaching this out-of-scope recall
            (keeping in-scope accuracy highest); otherwise the threshold maximising in-scope
            accuracy + out-of-scope recall.

    Returns:
        The threshold and the validation in-scope accuracy / out-of-scope recall it gives.
    """
    oos_index = labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in labels else -1
    candidates = np.unique(np.concatenate([[0.0], np.round(np.linspace(0.0, 0.99, 100), 2)]))
    best: tuple[float, float, dict[str, float]] | None = None
    for threshold in candidates:
        accuracy = float((abstain(in_probs, labels, threshold) == in_targets).mean())
        recall = float((abstain(oos_probs, labels, threshold) == oos_index).mean())
        stats = {"in_scope_accuracy": accuracy, "oos_recall": recall}
        if min_oos_recall is not None:
            if recall >= min_oos_recall:
                return float(threshold), stats
            continue
        if best is None or accuracy + recall > best[1] + 1e-12:
            best = (float(threshold), accuracy + recall, stats)
    if best is None:  # no threshold reaches the requested recall: abstain as much as allowed
        threshold = float(candidates[-1])
        accuracy = float((abstain(in_probs, labels, threshold) == in_targets).mean())
        recall = float((abstain(oos_probs, labels, threshold) == oos_index).mean())
        return threshold, {"in_scope_accuracy": accuracy, "oos_recall": recall}
    return best[0], best[2]

"""Give a trained sentence classifier a word n-gram part (:mod:`finetune.models.lexical`).

The part is fitted on the training split the classifier learnt from; its regularisation and the
weight it gets beside the head are chosen on the validation split by macro-F1, the criterion the
trainer uses, so the test split is never looked at. When no weight above 0 beats the head alone
on validation, nothing is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finetune.data.loaders import OUT_OF_SCOPE, DataError, TextDataset
from finetune.models.encoder import FeatureCache
from finetune.models.files import LEXICAL, LEXICAL_WEIGHTS, METRICS, read_json, write_json
from finetune.models.lexical import LexicalModel, LexicalSettings, fuse_log_probs, joined_scores, remove_lexical
from finetune.training.temperature import fit_temperature
from finetune.training.trainer import macro_f1


@dataclass
class LexicalReport:
    """What :func:`fit_lexical` chose and how it scored on validation."""

    model: str
    written: bool
    c: float
    weight: float
    temperature: float
    terms: int
    train_examples: int
    validation_examples: int
    head: dict[str, float]
    joined: dict[str, float]
    seconds: float
    grid: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def class_scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (4 places) of ``probs`` ``[N, C]`` against class ids ``y``."""
    return {"accuracy": round(float((probs.argmax(axis=1) == y).mean()), 4), "macro_f1": round(macro_f1(y, probs), 4)}


def fit_lexical(model_dir: str | Path, dataset: TextDataset, settings: LexicalSettings | None = None, *,
                seed: int = 0, progress: bool = False, cache: FeatureCache | None = None) -> LexicalReport:
    """Fit, choose and save the word n-gram part of the classifier in ``model_dir``.

    Args:
        model_dir: A sentence classifier's checkpoint that always answers (no out-of-scope threshold); an existing
            lexical part is replaced.
        dataset: The data the classifier was trained on, split as it was (same source,
            validation share and seed): the part learns from ``train`` and is chosen on ``validation``.
        settings: N-gram length, minimum document frequency and the grids to search.
        seed: Seed of the logistic regression's solver (recorded with the split's in ``metrics.json``).
        progress: Show a progress bar over the validation encoder pass.
        cache: Feature cache for that pass (None: encode afresh), for callers that fit many heads on one encoder.
    """
    from finetune.models.classifier import TextClassifier
    from finetune.models.integrity import update_checksums

    settings = settings or LexicalSettings()
    start = time.perf_counter()
    path = Path(model_dir)
    classifier = TextClassifier.load(path)
    labels = classifier.labels
    if classifier.model_threshold is not None or OUT_OF_SCOPE in labels:
        # Its threshold was chosen on the head's confidence, and no training text is out of scope.
        raise DataError(f"{path} abstains (out_of_scope below a threshold chosen for its head alone); "
                        "a lexical part joins classifiers that always answer (sentiment, topics)")
    if not dataset.validation:
        raise DataError(f"{dataset.name}: no validation examples to choose the lexical weight on; "
                        "give a --val-fraction above 0")
    unknown = sorted({ex.label for ex in dataset.train + dataset.validation} - set(labels))
    if unknown:
        raise DataError(f"{dataset.name} has labels the model does not know: {unknown[:5]}; wrong --data or model?")
    texts = [ex.text for ex in dataset.validation]
    y = np.array([labels.index(ex.label) for ex in dataset.validation])
    head = classifier.head_probabilities(classifier.encode(texts, cache=cache, progress=progress))
    head_scores = class_scores(y, head)
    best: tuple[float, float, float, LexicalModel] | None = None  # (macro-F1, -weight, -C, model)
    grid: list[dict[str, float]] = []
    for c in settings.c_grid:
        lexical = LexicalModel.fit([ex.text for ex in dataset.train], [ex.label for ex in dataset.train], labels,
                                   ngram_max=settings.ngram_max, min_df=settings.min_df, c=c, seed=seed)
        log_q = lexical.log_probs(texts)
        for weight in settings.weight_grid:
            scores = class_scores(y, fuse_log_probs(head, log_q, weight) if weight else head)
            grid.append({"c": c, "weight": weight, **scores})
            # Ties go to the smaller weight, then the stronger regularisation.
            key = (scores["macro_f1"], -weight, -c)
            if best is None or key > best[:3]:
                best = (*key, lexical.with_weight(weight))
    assert best is not None  # the grids are non-empty (LexicalSettings)
    chosen = best[3]
    joined = next(g for g in grid if g["c"] == chosen.c and g["weight"] == chosen.weight)
    # The joined scores' temperature, fitted as calibration fits a head's (validation log-loss).
    temperature = round(fit_temperature(torch.from_numpy(joined_scores(head, chosen.log_probs(texts), chosen.weight)),
                                        torch.from_numpy(y)), 3)
    chosen = chosen.with_weight(chosen.weight, temperature)
    written = chosen.weight > 0 and joined["macro_f1"] > head_scores["macro_f1"]
    report = LexicalReport(model=str(path), written=written, c=chosen.c, weight=chosen.weight if written else 0.0,
                           temperature=temperature if written else 1.0,
                           terms=len(chosen.vocabulary), train_examples=len(dataset.train),
                           validation_examples=len(dataset.validation), head=head_scores,
                           joined={k: joined[k] for k in ("accuracy", "macro_f1")},
                           seconds=round(time.perf_counter() - start, 1), grid=grid)
    if written:
        chosen.save(path)
    else:  # a part fitted before no longer earns its place
        remove_lexical(path)
    summary = {k: v for k, v in report.to_dict().items() if k not in ("model", "grid")}
    metrics = read_json(path / METRICS) if (path / METRICS).is_file() else {}
    fitted = {"data": dataset.name, "seed": seed, "ngram_max": settings.ngram_max, "min_df": settings.min_df, **summary}
    write_json(path / METRICS, {**metrics, "lexical": fitted})
    update_checksums(path, [LEXICAL, LEXICAL_WEIGHTS, METRICS])  # the rest was verified when the model loaded
    return report

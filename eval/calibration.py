"""Fit a classifier's calibration for one backend on validation data (``agent finetune calibrate``).

The encoder runs in torch as always; only the head's circuits run on ``backend``. The head's raw
logits of in-scope validation queries (and of out-of-scope ones for a model with an
``out_of_scope`` class) give the temperature (:func:`finetune.training.temperature.fit_temperature`),
and the out-of-scope threshold is chosen again on the calibrated probabilities by the rule that
chose the model's own (:func:`finetune.data.oos.choose_threshold`), on validation data, never test.

With ``adapt`` (``--adapt-head``), the same validation run also gives a model of the backend's
noise, and the head's output layers are retrained under it on the model's training queries
(:mod:`finetune.models.noise_adapt`) before the temperature is fitted on the retrained logits.
"""

from __future__ import annotations

from datetime import date as Date
from typing import Any

import numpy as np
import torch

from eval import metrics
from eval.classification import EvalData, _subsample
from finetune.data.loaders import OUT_OF_SCOPE, DataError, TextExample
from finetune.data.oos import choose_threshold
from finetune.models.calibration import Calibration, backend_key
from finetune.models.classifier import TextClassifier
from finetune.models.encoder import FeatureCache
from finetune.models.noise_adapt import AdaptConfig, adapt_output_layers, adapted_logits, check_adaptable, fit_noise_model
from finetune.training.temperature import fit_temperature


def fit_calibration(
    classifier: TextClassifier,
    data: EvalData,
    backend: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    min_oos_recall: float | None = None,
    cache: FeatureCache | None = None,
    progress: bool = False,
    day: str | None = None,
    clarify_below: float | None = None,
    adapt: AdaptConfig | None = None,
    adapt_examples: list[TextExample] | None = None,
) -> tuple[Calibration, dict[str, torch.Tensor] | None]:
    """Run ``data`` through ``classifier`` on ``backend`` and fit that backend's calibration.

    Args:
        classifier: A loaded model (its backend is switched to ``backend``; an entry it already
            has for that backend is set aside, since it is being fitted again).
        data: Validation examples and, for intents, out-of-scope validation examples.
        backend: Where the head's circuits run for the fit.
        limit: Use a seeded subsample of at most this many examples (and as many out-of-scope ones).
        seed: Seed of the subsample.
        min_oos_recall: The threshold rule (see :func:`finetune.data.oos.choose_threshold`).
        cache: Feature cache for the encoder pass (frozen models).
        progress: Show a progress bar while encoding.
        day: Date recorded in the entry (today when not given).
        clarify_below: The router's ``clarify_below``; when given (intents models), the router's
            clarify margin is chosen again on the calibrated probabilities of the in-scope queries
            (:func:`eval.router_thresholds.choose_margin`, the rule that chose the shipped one).
        adapt: Also retrain the head's output layers for the backend's noise, on ``adapt_examples``
            (the model's training queries), with this schedule.
        adapt_examples: Training queries for ``adapt``.

    Returns:
        The entry, and the retrained output layers (None without ``adapt``) for
        :func:`finetune.models.calibration.write_calibration`.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    path = classifier.checkpoint.path
    if classifier.lexical is not None:
        # Its weight and temperature were chosen for the head's probabilities as they are now.
        raise ValueError(f"{path} has a word n-gram part fitted for its head as it is; remove it "
                         f"(agent finetune lexical {path} --remove), calibrate, then fit it again")
    key = backend_key(backend)  # a bad spec fails here, before the encoder pass
    labels = classifier.labels
    if adapt is not None:
        check_adaptable(classifier.head.config.kind, key)
        if not adapt_examples:
            raise DataError("--adapt-head needs the model's training queries; none were found")
        _check_labels(adapt_examples, labels, "the training queries")
    examples = _subsample(data.examples, limit, seed)
    oos = _subsample(data.oos, limit, seed) if OUT_OF_SCOPE in labels else []
    if not examples:
        raise DataError(f"{data.name} {data.split}: no examples to calibrate on")
    _check_labels(examples, labels, f"{data.name} {data.split}")
    everything = examples + oos
    features = classifier.encode([ex.text for ex in everything], cache=cache, progress=progress)
    classifier.calibrations.pop(key, None)  # fitted again from the checkpoint's own head
    classifier.set_backend(backend)
    targets = torch.tensor([labels.index(ex.label) for ex in everything])
    weights = None
    if adapt is None:
        logits = classifier.logits(features)
        raw_logits = logits
    else:
        raw_logits, noisy = _logits_and_readouts(classifier, features)
        train_features = classifier.encode([ex.text for ex in adapt_examples], cache=cache, progress=progress)
        train_targets = torch.tensor([labels.index(ex.label) for ex in adapt_examples])
        # One switch to the exact simulator for both sets: rebuilding a noisy backend is not free.
        exact = _exact_readouts(classifier, torch.cat([features, train_features]), backend)
        noise = fit_noise_model(classifier.head, exact[:len(features)], noisy)
        weights = adapt_output_layers(classifier.head, train_features, exact[len(features):], train_targets, noise, adapt)
        logits = adapted_logits(classifier.head, weights, features, noisy)
    temperature = fit_temperature(logits, targets)

    n_in = len(examples)
    raw = torch.softmax(logits, -1).numpy()
    scaled = torch.softmax(logits / temperature, -1).numpy()
    correct = (raw[:n_in].argmax(-1) == targets[:n_in].numpy())
    threshold = classifier.model_threshold
    if oos and threshold is not None:
        threshold, _ = choose_threshold(scaled[:n_in], targets[:n_in].numpy(), scaled[n_in:], labels,
                                        min_oos_recall=min_oos_recall)
    margin = None
    if clarify_below is not None and classifier.task == "intents":
        from eval.router_thresholds import choose_margin

        in_scope = [i for i, name in enumerate(labels) if name != OUT_OF_SCOPE]
        in_targets = np.array([in_scope.index(int(t)) for t in targets[:n_in]])
        margin, _ = choose_margin(scaled[:n_in][:, in_scope], in_targets, clarify_below)
    adapted: dict[str, Any] = {}
    if adapt is not None:
        before = float(np.mean(raw_logits[:n_in].argmax(-1).numpy() == targets[:n_in].numpy()))
        adapted = {"noise": noise.to_dict(), "adapted_on": len(adapt_examples), "accuracy_before": round(before, 6)}
    entry = Calibration(
        backend=key,
        temperature=round(temperature, 6),
        threshold=threshold,
        clarify_margin=margin,
        n=n_in,
        n_oos=len(oos),
        data=f"{data.name} {data.split}",
        date=day or Date.today().isoformat(),
        ece_before=round(metrics.expected_calibration_error(raw[:n_in], correct), 6),
        ece_after=round(metrics.expected_calibration_error(scaled[:n_in], correct), 6),
        accuracy=round(float(np.mean(correct)), 6),
        **adapted,
    )
    return entry, weights


def _check_labels(examples: list[TextExample], labels: list[str], what: str) -> None:
    unknown = sorted({ex.label for ex in examples} - set(labels))
    if unknown:
        raise DataError(f"{what} has labels the model does not know: "
                        f"{', '.join(map(repr, unknown[:5]))}; wrong --data or model?")


def _logits_and_readouts(classifier: TextClassifier, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's logits on its backend and the circuits' readouts behind them, from one run."""
    captured: list[torch.Tensor] = []
    hook = classifier.head.quantum.register_forward_hook(
        lambda _module, _inputs, output: captured.append(output.detach().float().cpu()))
    try:
        logits = classifier.logits(features)
    finally:
        hook.remove()
    return logits, torch.cat(captured)


def _exact_readouts(classifier: TextClassifier, features: torch.Tensor, backend: str) -> torch.Tensor:
    """The circuits' readouts of ``features`` on the exact simulator; the head returns to ``backend``."""
    classifier.head.set_backend("exact")
    try:
        return _logits_and_readouts(classifier, features)[1]
    finally:
        classifier.head.set_backend(backend)

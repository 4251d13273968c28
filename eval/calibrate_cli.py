"""``agent finetune calibrate`` (mounted by agent/cli.py): fit a classifier's temperature, threshold and router margin for one backend.

Copies the model to ``--out`` first (unless it is calibrated in place), fits on validation data
(:func:`eval.calibration.fit_calibration`) and stores the entry in the copy's ``calibration.json``,
recording its checksums again. ``default`` names the shipped intents model, which is never
written unless ``--out`` points at it. On an ``ibm:`` backend, ``--dry-run`` and
``--max-qpu-seconds`` estimate the fit's one scoring pass first (:mod:`finetune.cli.cost`).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from finetune.cli.console import echo_json, friendly_errors
from finetune.cli.cost import guard_cost
from finetune.cli.options import Data, DataDir, DeviceOption, DryRun, JsonOutput, MaxQpuSeconds, say


def _calibrate_plan(o: dict[str, Any]) -> tuple:
    """What ``--dry-run`` counts: the head scores the fit's queries (and out-of-scope ones) once."""
    from agent.shipped import model_path
    from finetune.models.checkpoint import load_checkpoint
    from finetune.quantum.cost import eval_workload

    _check_split(o["split"])
    checkpoint = load_checkpoint(model_path(o["model"], "intents"))
    eval_data, _ = _fit_data(checkpoint.task, checkpoint.labels, checkpoint.config, o)
    limit = o["limit"]
    examples = sum(len(part) if limit is None else min(limit, len(part)) for part in (eval_data.examples, eval_data.oos))
    head = checkpoint.head.config
    return head, [eval_workload(examples, head.n_circuits)]


@friendly_errors
@guard_cost(_calibrate_plan)
def calibrate(
    model: Annotated[str, typer.Argument(help="Classifier checkpoint directory, or 'default' (the shipped intents model).")],
    backend: Annotated[str, typer.Option(help="Backend to calibrate for, e.g. aer:noise=fake_sherbrooke,shots=1024.")],
    out: Annotated[Path | None, typer.Option(help="Where the calibrated model goes (a copy of MODEL); default: MODEL itself, in place (required for 'default').")] = None,
    data: Data = "banking77",
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="Split to fit on: validation (never test).")] = "validation",
    limit: Annotated[int | None, typer.Option(help="Fit on a seeded subsample of this many queries (and as many out-of-scope ones).")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the --limit subsample.")] = 0,
    oos_data: Annotated[str | None, typer.Option(help="Out-of-scope validation queries for the threshold (models with an out_of_scope class).")] = "clinc150",
    oos_recall: Annotated[float | None, typer.Option(help="Threshold rule: lowest threshold reaching this out-of-scope recall (default: the model's own rule, from its recorded command).")] = None,
    val_fraction: Annotated[float | None, typer.Option(help="Validation share carved from train (default: the model's own, from its recorded command).")] = None,
    adapt_head: Annotated[bool, typer.Option(help="Also retrain the head's output layers for this backend's noise: a noise model fitted on the same validation run, drawn on the model's training queries (exact readouts; no more circuits on the backend). Wins back queries the noise flips, which a temperature cannot.")] = False,
    adapt_epochs: Annotated[int, typer.Option(min=1, max=100, help="Epochs of --adapt-head over the training queries.")] = 5,
    json_output: JsonOutput = False,
    dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None, device: DeviceOption = "cpu",
) -> dict[str, Any]:
    """Fit temperature scaling and the out-of-scope threshold of a classifier for one backend
    (--adapt-head: and its output layers, for that backend's noise)."""
    from agent.shipped import model_path
    from eval.calibration import fit_calibration
    from finetune.models.calibration import backend_key, read_calibrations, write_calibration
    from finetune.models.checkpoint import CheckpointError, read_json
    from finetune.models.device import resolve_device
    from finetune.models.files import CONFIG
    from finetune.models.loading import load_classifier
    from finetune.models.noise_adapt import AdaptConfig, check_adaptable

    _check_split(split)
    adapt = AdaptConfig(epochs=adapt_epochs) if adapt_head else None
    resolved = resolve_device(device)
    key = backend_key(backend)  # one-line error for a bad spec before anything is copied
    source = model_path(model, "intents")
    if not (source / CONFIG).is_file():
        raise CheckpointError(f"model directory not found or not a single classifier: {source} "
                              "(give a checkpoint folder or 'default')")
    if out is None:
        if str(model) == "default":
            raise ValueError("calibrating the shipped model needs --out (a copy); "
                             f"--out {source} writes into the shipped assets")
        out = source
    config = read_json(source / CONFIG)
    if adapt is not None:  # before anything is copied
        check_adaptable((config.get("head") or {}).get("kind", ""), key)
    if out.resolve() != source.resolve():
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"{out} already exists and is not empty; choose another --out "
                             f"or calibrate that model in place: agent finetune calibrate {out} --backend …")
        load_classifier(source)  # checksums verified before anything is copied
        shutil.copytree(source, out, dirs_exist_ok=True)
    classifier = load_classifier(out)
    if not hasattr(classifier, "logits"):
        raise ValueError(f"{out} is an ensemble; calibrate each member instead")
    classifier.to(resolved)
    eval_data, oos_recall = _fit_data(classifier.task, classifier.labels, config, locals())
    adapt_examples = _training_examples(classifier.task, classifier.labels, config, locals()) if adapt else None
    if not json_output:
        say(f"fitting {key} on {min(limit or len(eval_data.examples), len(eval_data.examples))} "
            f"{eval_data.name} {split} queries …")
    from agent.router import RouterConfig

    # The router's clarify margin is re-chosen only for intents models: it reads their probabilities.
    clarify_below = RouterConfig.load().clarify_below if classifier.task == "intents" else None
    entry, head_weights = fit_calibration(classifier, eval_data, backend, limit=limit, seed=seed,
                                          min_oos_recall=oos_recall, progress=not json_output,
                                          clarify_below=clarify_below, adapt=adapt, adapt_examples=adapt_examples)
    write_calibration(out, entry, head_weights)
    entry = read_calibrations(out)[entry.backend]
    summary = {"model": str(out), **entry.to_dict()}
    if json_output:
        echo_json(summary)
    else:
        typer.echo(f"{out}: calibrated for {entry.backend}: temperature {entry.temperature:.3f}, threshold "
                   f"{entry.threshold}, clarify margin {entry.clarify_margin}; ECE on the fit data {entry.ece_before:.3f} -> {entry.ece_after:.3f} "
                   f"({entry.n} queries, {entry.n_oos} out-of-scope)")
        if entry.head_weights:
            gains = ", ".join(f"{g:.2f}" for g in entry.noise["gain"])
            typer.echo(f"  output layers retrained on {entry.adapted_on} training queries under the fitted noise "
                       f"(signal kept per circuit: {gains}); accuracy on the fit queries "
                       f"{entry.accuracy_before:.3f} -> {entry.accuracy:.3f}")
    return summary


def _check_split(split: str) -> None:
    if split == "test":
        raise ValueError("calibrate on validation data, not test (the test split must stay unseen)")


def _fit_data(task: str, labels: list[str], config: dict[str, Any], o: dict[str, Any]) -> tuple[Any, float | None]:
    """The queries the fit reads (out-of-scope ones for a model with that class) and the threshold
    rule, each the model's own (its recorded command) unless the options say otherwise."""
    from eval.classification import load_eval_data
    from finetune.data.loaders import OUT_OF_SCOPE

    recorded = _recorded_options(config.get("command"))
    oos_recall = o["oos_recall"]
    if oos_recall is None and "--oos-recall" in recorded:
        oos_recall = float(recorded["--oos-recall"])
    val_fraction = o["val_fraction"]
    if val_fraction is None:
        val_fraction = float(recorded.get("--val-fraction", 0.1))
    with_oos = task == "intents" and OUT_OF_SCOPE in labels
    eval_data = load_eval_data(task, o["data"], o["split"], data_dir=o["data_dir"], val_fraction=val_fraction,
                               oos_source=o["oos_data"] if with_oos else None)
    return eval_data, oos_recall


def _training_examples(task: str, labels: list[str], config: dict[str, Any], o: dict[str, Any]) -> list:
    """The model's training queries for --adapt-head: the train split of --data (less the model's
    validation carve) and, for a model with an out_of_scope class, as many out-of-scope training
    queries as it was trained with (a seeded subsample)."""
    from eval.classification import _subsample

    train = _fit_data(task, labels, config, {**o, "split": "train"})[0]
    extra: list = []
    if train.oos:
        count = (config.get("settings", {}).get("oos") or {}).get("train_examples") or len(train.examples) // len(labels)
        extra = _subsample(train.oos, int(count), 0)
    return list(train.examples) + extra


def _recorded_options(command: str | None) -> dict[str, str]:
    """``--option value`` pairs of the command line recorded in a checkpoint's config.json."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return {}
    return {word: value for word, value in zip(words, words[1:]) if word.startswith("--") and not value.startswith("--")}

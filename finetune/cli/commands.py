"""``agent finetune …``: train models from data files and write checkpoint directories.

Each command parses options (declared once, in :mod:`finetune.cli.options`), builds the configs,
calls one training function and prints the result. The full command line (every option, defaults
included) is recorded in the checkpoint's ``config.json`` so the model can be rebuilt exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from finetune.cli.console import echo_json, friendly_errors
from finetune.cli.cost import guard_cost
from finetune.cli.options import (
    AddTrain, Backend, BatchSize, DeviceOption, DryRun, MaxQpuSeconds, Circuits, Data, DataDir, Depth, Dropout, Encoding, EncoderPath, EntityData, Epochs,
    HeadKind, Hidden, JsonOutput, LabelColumn, LabelSmoothing, Lora, LoraAlpha, LoraR, LoraTargets, Lr,
    MaxLength, Out, Patience, Qubits, Readout, Seed, ShareAdapter, SoftLabels, TestFolds, TextColumn, Threads, TrainFolds, ValFraction,
    WeightDecay, command_line, head_config, load_encoder, lora_settings, say, set_threads, training_arguments,
)
from finetune.runs.command import tracked_run, training_hooks

app = typer.Typer(no_args_is_help=True, help="Train intent, sentiment (and entity) models.")


def _intents_data(o: dict[str, Any]) -> tuple[Any, Any]:
    """The intents data set and, with ``--oos-data``, the out-of-scope examples."""
    from finetune.data.loaders import load_intents

    dataset = load_intents(o["data"], data_dir=o["data_dir"], text_column=o["text_column"],
                           label_column=o["label_column"], val_fraction=o["val_fraction"], seed=o["seed"])
    oos = None
    if o["oos_data"] is not None:
        from finetune.data.oos import clinc_oos_examples

        clinc = load_intents(o["oos_data"], data_dir=o["data_dir"], seed=o["seed"])
        oos = clinc_oos_examples(clinc, data_dir=o["data_dir"], per_intent=o["oos_per_intent"])
    return dataset, oos


def _training_plan(data: Callable[[dict[str, Any]], tuple[Any, Any]]) -> Callable[[dict[str, Any]], Any]:
    """What ``--dry-run`` counts for a classifier: every epoch's SPSA steps and validation."""

    def plan(o: dict[str, Any]) -> Any:
        from finetune.quantum.cost import train_workload

        dataset, oos = data(o)
        n_train = len(dataset.train) + (len(oos.train) if oos else 0)
        n_val = len(dataset.validation) + (len(oos.validation) if oos else 0)
        head = head_config(o)
        return head, [train_workload(n_train, n_val, head.n_circuits, batch_size=o["batch_size"], epochs=o["epochs"])]

    return plan


def _ner_plan(o: dict[str, Any]) -> Any:
    """What ``--dry-run`` counts for a tagger: its head runs once per word (not per sentence), so
    the rows are every epoch's SPSA rows of the training words and one row per validation word;
    ``--augment`` copies are counted as if every sentence had entities (an upper bound)."""
    import math

    from finetune.data.folds import nlupp_folds
    from finetune.data.loaders import load_entities
    from finetune.data.tagging import recorded_data_warnings
    from finetune.models.encoder import split_words
    from finetune.quantum.cost import EVAL_CHUNK, SPSA_ROWS, Workload

    folds = nlupp_folds(o["data"], o["train_folds"], o["test_folds"], o["setup"], o["fold"])
    with recorded_data_warnings():
        dataset = load_entities(o["data"], data_dir=o["data_dir"], val_fraction=o["val_fraction"],
                                seed=o["seed"] if o["split_seed"] is None else o["split_seed"], **folds)
    copies = 1 + o["augment"]
    train_words = copies * sum(len(split_words(ex.text)) for ex in dataset.train)
    val_words = sum(len(split_words(ex.text)) for ex in dataset.validation)
    head = head_config(o)
    steps = math.ceil(copies * len(dataset.train) / o["batch_size"])
    val_jobs = math.ceil(len(dataset.validation) / max(o["batch_size"], EVAL_CHUNK))
    rows = o["epochs"] * (SPSA_ROWS * train_words + val_words) * head.n_circuits
    return head, [Workload("train", rows, o["epochs"] * (steps + val_jobs))]


def _sentiment_data(o: dict[str, Any]) -> tuple[Any, None]:
    from finetune.data.loaders import add_train_examples, load_sentiment

    dataset = load_sentiment(o["data"], data_dir=o["data_dir"], text_column=o["text_column"],
                             label_column=o["label_column"], val_fraction=o["val_fraction"], seed=o["seed"])
    if o.get("add_train"):
        dataset = add_train_examples(dataset, o["add_train"], text_column=o["text_column"], label_column=o["label_column"])
    return dataset, None


@app.command("intents")
@friendly_errors
@guard_cost(_training_plan(_intents_data))
@tracked_run("finetune", checkpoints=True)
def intents(
    ctx: typer.Context,
    out: Out,
    data: Data = "banking77",
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    val_fraction: ValFraction = 0.1,
    oos_data: Annotated[str | None, typer.Option(help="Out-of-scope examples: 'clinc150' adds an out_of_scope class and a threshold.")] = None,
    oos_per_intent: Annotated[int, typer.Option(help="In-scope CLINC150 queries of each non-banking intent used as out-of-scope training examples.")] = 10,
    oos_recall: Annotated[float | None, typer.Option(help="Choose the threshold reaching this validation out-of-scope recall (default: maximise accuracy + recall).")] = None,
    head: HeadKind = "hybrid", qubits: Qubits = 6, depth: Depth = 2, encoding: Encoding = "amplitude",
    readout: Readout = "probs", circuits: Circuits = 4, hidden: Hidden = 64, dropout: Dropout = 0.1,
    backend: Backend = "exact", epochs: Epochs = 30, batch_size: BatchSize = 64, lr: Lr = 3e-3,
    weight_decay: WeightDecay = 1e-4, patience: Patience = 5, label_smoothing: LabelSmoothing = 0.0,
    seed: Seed = 0, lora: Lora = False, lora_r: LoraR = 8, lora_alpha: LoraAlpha = 16,
    lora_targets: LoraTargets = "query,value", encoder: EncoderPath = "default", max_length: MaxLength = 128,
    json_output: JsonOutput = False, dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None,
    device: DeviceOption = "cpu",
) -> dict[str, Any]:
    """Train an intent classifier (BANKING77 by default), optionally with out-of-scope detection."""
    dataset, oos = _intents_data(locals())
    return _train_classifier(ctx, "intents", dataset, oos, locals())


def _topics_data(o: dict[str, Any]) -> tuple[Any, None]:
    from finetune.data.loaders import add_topic_examples, limit_examples, load_topics

    dataset = load_topics(o["data"], data_dir=o["data_dir"], text_column=o["text_column"],
                          label_column=o["label_column"], val_fraction=o["val_fraction"], seed=o["seed"])
    if o.get("train_limit") is not None:
        dataset.train = limit_examples(dataset.train, o["train_limit"], o["seed"])
    if o.get("add_train"):  # after the subsample: the additions are all kept
        dataset = add_topic_examples(dataset, o["add_train"], data_dir=o["data_dir"], text_column=o["text_column"],
                                     label_column=o["label_column"])
    return dataset, None


@app.command("sentiment")
@friendly_errors
@guard_cost(_training_plan(_sentiment_data))
@tracked_run("finetune", checkpoints=True)
def sentiment(
    ctx: typer.Context,
    out: Out,
    data: Data = "fin_tweets",
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    val_fraction: ValFraction = 0.1,
    add_train: AddTrain = None,
    share_adapter: ShareAdapter = None,
    head: HeadKind = "hybrid", qubits: Qubits = 6, depth: Depth = 2, encoding: Encoding = "amplitude",
    readout: Readout = "probs", circuits: Circuits = 4, hidden: Hidden = 64, dropout: Dropout = 0.1,
    backend: Backend = "exact", epochs: Epochs = 30, batch_size: BatchSize = 64, lr: Lr = 3e-3,
    weight_decay: WeightDecay = 1e-4, patience: Patience = 5, label_smoothing: LabelSmoothing = 0.0,
    seed: Seed = 0, lora: Lora = False, lora_r: LoraR = 8, lora_alpha: LoraAlpha = 16,
    lora_targets: LoraTargets = "query,value", encoder: EncoderPath = "default", max_length: MaxLength = 128,
    json_output: JsonOutput = False, dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None,
    device: DeviceOption = "cpu",
    soft_labels: SoftLabels = None,
) -> dict[str, Any]:
    """Train a sentiment classifier (finance tweets by default; labels negative/positive/neutral)."""
    _check_share_adapter(share_adapter, lora, max_length)
    dataset, _ = _sentiment_data(locals())
    return _train_classifier(ctx, "sentiment", dataset, None, locals())


@app.command("topics")
@friendly_errors
@guard_cost(_training_plan(_topics_data))
@tracked_run("finetune", checkpoints=True)
def topics(
    ctx: typer.Context,
    out: Out,
    data: Annotated[str, typer.Option(help="'fin_topics', a CSV/JSONL file or folder (labels as topic ids or names), or a hub id.")] = "fin_topics",
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    val_fraction: ValFraction = 0.1,
    share_adapter: ShareAdapter = None,
    train_limit: Annotated[int | None, typer.Option(min=1, help="Train on a seeded, label-stratified subsample of this many training examples (validation and test stay whole).")] = None,
    add_train: AddTrain = None,
    head: HeadKind = "hybrid", qubits: Qubits = 6, depth: Depth = 2, encoding: Encoding = "amplitude",
    readout: Readout = "probs", circuits: Circuits = 4, hidden: Hidden = 64, dropout: Dropout = 0.1,
    backend: Backend = "exact", epochs: Epochs = 30, batch_size: BatchSize = 64, lr: Lr = 3e-3,
    weight_decay: WeightDecay = 1e-4, patience: Patience = 5, label_smoothing: LabelSmoothing = 0.0,
    seed: Seed = 0, lora: Lora = False, lora_r: LoraR = 8, lora_alpha: LoraAlpha = 16,
    lora_targets: LoraTargets = "query,value", encoder: EncoderPath = "default", max_length: MaxLength = 64,
    threads: Threads = None,
    json_output: JsonOutput = False, dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None,
    device: DeviceOption = "cpu",
    soft_labels: SoftLabels = None,
) -> dict[str, Any]:
    """Train a news-topic classifier (finance headlines, 20 topics, by default)."""
    set_threads(threads)
    _check_share_adapter(share_adapter, lora, max_length)
    dataset, _ = _topics_data(locals())
    return _train_classifier(ctx, "topics", dataset, None, locals())


def _check_share_adapter(share_adapter: Path | None, lora: bool, max_length: int) -> None:
    """Refuse a --share-adapter that cannot share its model's encoder pass."""
    from finetune.errors import SettingError

    if share_adapter is None:
        return
    if lora:
        raise SettingError("share_adapter", "--share-adapter trains on an existing adapter; drop --lora")
    if not (share_adapter / "adapter" / "adapter_model.safetensors").is_file():
        raise SettingError("share_adapter", f"{share_adapter} has no LoRA adapter (adapter/adapter_model.safetensors); "
                                            "name a LoRA model such as agent/assets/models/news-sentiment")
    from finetune.models.checkpoint import load_checkpoint

    partner = load_checkpoint(share_adapter).encoder.get("max_length")
    if partner != max_length:
        raise SettingError("max_length", f"{share_adapter} reads texts at --max-length {partner}; "
                                         f"use the same so both models share one encoder pass")


def _train_classifier(ctx: typer.Context, task: str, dataset: Any, oos: Any, o: dict[str, Any]) -> dict[str, Any]:
    """The intents and sentiment commands' shared second half: train, then print the summary."""
    from finetune.training.classifier import ClassifierSpec, train_classifier

    spec = ClassifierSpec(task=task, head=head_config(o), lora=lora_settings(o) if o["lora"] else None,
                          min_oos_recall=o.get("oos_recall"),
                          adapter=o["share_adapter"] / "adapter" if o.get("share_adapter") else None)
    out = Path(o["out"])
    soft = []
    if o.get("soft_labels") is not None:
        from finetune.data.soft_labels import read_soft_labels

        soft = read_soft_labels(o["soft_labels"], dataset.labels)
    trained = train_classifier(dataset, spec, training_arguments(o, out), load_encoder(o), out, oos=oos,
                               backend=o["backend"], command=command_line(ctx), soft=soft, **training_hooks(ctx))
    summary = {key: value for key, value in trained.metrics.items() if key != "history"}
    summary = {"model": str(trained.path), "task": task, "labels": len(trained.classifier.labels), **summary}
    if o["json_output"]:
        echo_json(summary)
        return summary
    typer.echo(f"trained {task} model ({o['head']} head, {summary['head_parameters']} parameters) -> {trained.path}")
    typer.echo(f"  best epoch {summary['best_epoch']}, validation macro-F1 {summary['val_macro_f1']:.4f}, "
               f"{summary['train_seconds']:.0f} s")
    if "threshold" in summary:
        stats = summary["val_oos"]
        typer.echo(f"  threshold {summary['threshold']:.2f}: validation in-scope accuracy "
                   f"{stats['in_scope_accuracy']:.4f}, out-of-scope recall {stats['oos_recall']:.4f}")
    typer.echo(f"  evaluate: agent eval {task} {trained.path} --data {o['data']} --split test")
    return summary


@app.command("ner")
@friendly_errors
@guard_cost(_ner_plan)
@tracked_run("finetune", checkpoints=True)
def ner(
    ctx: typer.Context,
    out: Out,
    data: EntityData = "nlupp",
    data_dir: DataDir = None,
    train_folds: TrainFolds = "0-17",
    test_folds: TestFolds = "18,19",
    setup: Annotated[str | None, typer.Option(help="NLU++ setup instead of the fold options: 'large' (train on 19 folds, test on --fold) or '20-fold' (train on --fold, test on the other 19).")] = None,
    fold: Annotated[int, typer.Option(help="The fold of --setup.")] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of train carved (seeded) as validation when the data has none; 0 trains on all of it for exactly --epochs, with --prior-weight (a refit after a run with validation chose both).")] = 0.1,
    prior_weight: Annotated[float | None, typer.Option(help="Weight of the tag-transition prior (default: chosen on validation from 0, 0.25, 0.5, 0.75, 1).", min=0)] = None,
    split_seed: Annotated[int | None, typer.Option(help="Seed of the validation carve (default: --seed); keep it to train models with another --seed on the same validation split, e.g. for an ensemble.")] = None,
    head: HeadKind = "linear", qubits: Qubits = 6, depth: Depth = 2, encoding: Encoding = "amplitude",
    readout: Readout = "probs", circuits: Circuits = 4, hidden: Hidden = 64, dropout: Dropout = 0.1,
    backend: Backend = "exact", epochs: Annotated[int, typer.Option(help="Most epochs (early stopping on validation entity micro-F1).")] = 10,
    batch_size: BatchSize = 16, lr: Lr = 1e-3,
    weight_decay: WeightDecay = 1e-4, patience: Patience = 3, label_smoothing: LabelSmoothing = 0.0,
    seed: Seed = 0, lora: Lora = True, lora_r: LoraR = 16, lora_alpha: LoraAlpha = 32,
    lora_targets: LoraTargets = "query,key,value,dense", encoder: EncoderPath = "default", max_length: MaxLength = 128,
    threads: Threads = None,
    augment: Annotated[int, typer.Option(help="Mention-replaced copies of each training sentence with entities (0: none; validation and test are never augmented).")] = 0,
    mentions: Annotated[str | None, typer.Option(help="More mentions for --augment to draw half its replacements from: 'faker' (made-up people's and company names) or a JSON file {entity type: \\[mentions]}, e.g. your payees and merchants.")] = None,
    share_mentions: Annotated[list[str] | None, typer.Option(help="Entity types that are one kind of mention in different roles, comma-separated, e.g. date,date_from,date_to: --augment swaps in mentions of any of them. Repeat for more groups.")] = None,
    share_adapter: Annotated[Path | None, typer.Option(help="A model whose LoRA adapter the head reads, frozen (e.g. agent/assets/models/news-sentiment): the tagger then shares that model's encoder pass. Trains the head alone, as --frozen does.")] = None,
    json_output: JsonOutput = False, dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None,
    device: DeviceOption = "cpu",
) -> dict[str, Any]:
    """Train an entity tagger (NLU++ banking slots by default); LoRA fine-tuning unless --frozen or --share-adapter."""
    from finetune.data.augment import augmented_training_set
    from finetune.data.folds import nlupp_folds
    from finetune.data.loaders import load_entities
    from finetune.data.tagging import recorded_data_warnings
    from finetune.errors import SettingError
    from finetune.training.tagger import TaggerSpec, train_tagger

    set_threads(threads)
    lora = lora and share_adapter is None  # a shared adapter stays frozen: only the head trains
    _check_share_adapter(share_adapter, lora, max_length)
    folds = nlupp_folds(data, train_folds, test_folds, setup, fold)
    with recorded_data_warnings() as skipped:
        dataset = load_entities(data, data_dir=data_dir, val_fraction=val_fraction,
                                seed=seed if split_seed is None else split_seed, **folds)
    for message in skipped[:5]:
        say(f"warning: {message}")
    if skipped:
        say(f"warning: {len(skipped)} span(s) in the data could not be used and were skipped")
    if not dataset.validation and prior_weight is None:
        raise SettingError("val_fraction", "training without validation data needs --prior-weight: run once with "
                                           "validation first and take the weight from its decoding.json (and --epochs "
                                           "from its best epoch)")
    dataset.train = augmented_training_set(dataset.train, dataset.entity_types, augment, mentions=mentions,
                                           share_mentions=share_mentions or [], seed=seed, say=say)
    o = locals()
    spec = TaggerSpec(head=head_config(o), lora=lora_settings(o) if lora else None,
                      adapter=share_adapter / "adapter" if share_adapter is not None else None)
    trained = train_tagger(dataset, spec, training_arguments(o, out), load_encoder(o), out, backend=backend,
                           command=command_line(ctx), skipped_spans=len(skipped), prior_weight=prior_weight,
                           **training_hooks(ctx))
    summary = {key: value for key, value in trained.metrics.items() if key != "history"}
    summary = {"model": str(trained.path), "task": "ner", "entity_types": len(dataset.entity_types), **folds, **summary}
    if json_output:
        echo_json(summary)
        return summary
    mode = "LoRA" if lora else f"on the frozen adapter of {share_adapter}" if share_adapter else "frozen encoder"
    typer.echo(f"trained entity tagger ({head} head, {mode}) -> {trained.path}")
    selected = (f"best epoch {summary['best_epoch']}, validation entity micro-F1 {summary['val_entity_f1']:.4f}"
                if summary["val_entity_f1"] is not None else f"{summary['best_epoch']} epochs, no validation data")
    typer.echo(f"  {selected}, {summary['train_seconds']:.0f} s, {summary['skipped_spans']} span(s) skipped")
    scored = f" --folds {','.join(map(str, folds['test_folds']))}" if folds else ""
    typer.echo(f"  evaluate: agent eval ner {trained.path} --data {data}{scored}")
    return summary


@app.command("joint")
@friendly_errors
@tracked_run("finetune", checkpoints=True)
def joint(
    ctx: typer.Context,
    sentiment_out: Annotated[Path, typer.Option(help="Sentiment checkpoint directory to write.")],
    ner_out: Annotated[Path, typer.Option(help="Entity tagger checkpoint directory to write.")],
    sentiment_data: Annotated[str, typer.Option(help="Sentiment data: 'fin_tweets', a CSV/JSONL file or folder, or a hub id.")] = "fin_tweets",
    add_sentiment_train: Annotated[list[Path] | None, typer.Option("--add-sentiment-train", help="More sentiment training examples: a CSV/JSONL file with the sentiment labels (repeat for several; a file given twice counts twice). They join the training split only.")] = None,
    ner_data: Annotated[str, typer.Option(help="Entity data: 'nlupp', a CoNLL or JSONL-with-spans file or folder, or a hub id.")] = "nlupp",
    topics_out: Annotated[Path | None, typer.Option(help="Also train a news-topic classifier on the shared adapter, into this directory (three models, one encoder pass).")] = None,
    topics_data: Annotated[str, typer.Option(help="Topic data (with --topics-out): 'fin_topics', a CSV/JSONL file or folder (labels as topic ids or names), or a hub id.")] = "fin_topics",
    add_topics_train: Annotated[list[Path] | None, typer.Option("--add-topics-train", help="More topic training examples (with --topics-out): a CSV/JSONL file labelled with topic names or ids (as in labels.json), e.g. headlines labelled by a topic teacher (`agent finetune soft-labels --labels-csv`). They join the training split only.")] = None,
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    train_folds: Annotated[str, typer.Option(help="NLU++ folds to train the tagger on (validation is carved from them).")] = "0-17",
    test_folds: TestFolds = "18,19",
    val_fraction: ValFraction = 0.1,
    sentiment_head: Annotated[str, typer.Option(help="Sentiment head: hybrid, quantum, linear or mlp.")] = "hybrid",
    topics_head: Annotated[str, typer.Option(help="Topic head (with --topics-out): hybrid, quantum, linear or mlp.")] = "hybrid",
    ner_head: Annotated[str, typer.Option(help="Tagger head: linear, hybrid, quantum or mlp.")] = "linear",
    qubits: Qubits = 6, depth: Depth = 2, encoding: Encoding = "amplitude",
    readout: Readout = "probs", circuits: Circuits = 4, hidden: Hidden = 64, dropout: Dropout = 0.1,
    backend: Backend = "exact",
    epochs: Annotated[int, typer.Option(help="Most epochs (early stopping on the mean of the validation macro-F1 of each sentence task and the entity micro-F1).")] = 4,
    batch_size: BatchSize = 32, lr: Lr = 1e-3, weight_decay: WeightDecay = 1e-4, patience: Patience = 2,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of the sentence tasks' losses (the tagger gets none).")] = 0.1,
    ner_repeat: Annotated[int, typer.Option(min=1, help="Times each tagging example appears per epoch (the tagging set is small).")] = 2,
    ner_weight: Annotated[float, typer.Option(help="Weight of the tagging loss beside the sentence losses.")] = 1.0,
    sentiment_weight: Annotated[float, typer.Option(help="Weight of the sentiment loss beside the other tasks'.")] = 1.0,
    topics_weight: Annotated[float, typer.Option(help="Weight of the topic loss beside the other tasks' (with --topics-out).")] = 1.0,
    teacher: Annotated[Path | None, typer.Option(help="A tagger trained alone (e.g. agent/assets/models/ner) whose entities on the sentence texts become their tagging targets, so the shared adapter keeps tagging news text.")] = None,
    pseudo_weight: Annotated[float, typer.Option(help="Weight of the tagging loss on the teacher's pseudo-labels.")] = 0.5,
    warm_start: Annotated[bool, typer.Option(help="Start the shared adapter and the tagger head from the teacher's (same tags and head shape; --lora-* and --ner-head then come from the teacher).")] = False,
    init_from: Annotated[list[Path] | None, typer.Option("--init-from", help="A LoRA model of one of the tasks (e.g. a topic model trained alone): the shared adapter and that task's head start from it (--lora-* then come from it). Repeat to start several heads, e.g. every checkpoint of an earlier joint run (they must share one adapter); with --warm-start the tagger head comes from the teacher unless a tagger is given here.")] = None,
    distil_from: Annotated[list[Path] | None, typer.Option("--distil-from", help="A sentiment or topic classifier (e.g. a topic model on an adapter of its own) whose probabilities on that task's training texts become part of its targets, or a JSONL of such probabilities from `agent finetune soft-labels` (e.g. teachers that never trained on the texts they label; texts it lacks learn from their labels alone). Repeat for the other task.")] = None,
    distil_weight: Annotated[float, typer.Option(help="Share of a taught task's loss read from its --distil-from teacher's probabilities (the rest from the gold labels).")] = 0.5,
    distil_temperature: Annotated[float, typer.Option(help="Temperature that softens the --distil-from teachers' logits.")] = 2.0,
    widen_to: Annotated[int | None, typer.Option(min=2, help="With --init-from: widen the started adapter to this LoRA rank first (alpha grows with it, so it begins computing what it did, with room to learn more).")] = None,
    seed: Seed = 0, lora_r: LoraR = 16, lora_alpha: LoraAlpha = 32,
    lora_targets: LoraTargets = "query,key,value,dense", encoder: EncoderPath = "default", max_length: MaxLength = 64,
    threads: Threads = None,
    json_output: JsonOutput = False,
    device: DeviceOption = "cpu",
) -> dict[str, Any]:
    """Train the sentiment classifier (and, with --topics-out, a topic classifier) and the entity
    tagger together on one shared LoRA adapter.

    All the models then run on one encoder pass per text (the news monitor's case), and the
    encoder itself learns finance polarity and topics. Writes ordinary checkpoints, one per model.
    """
    from finetune.data.folds import nlupp_folds
    from finetune.data.loaders import add_topic_examples, add_train_examples, load_entities, load_sentiment, load_topics
    from finetune.data.tagging import recorded_data_warnings
    from finetune.errors import SettingError
    from finetune.models.classifier import TextClassifier
    from finetune.models.loading import model_task
    from finetune.models.tagger import EntityTagger
    from finetune.data.soft_labels import soft_label_names
    from finetune.training.joint import JointSpec, SentenceTask, train_joint

    set_threads(threads)
    folders = [sentiment_out, ner_out] + ([topics_out] if topics_out is not None else [])
    if len({folder.resolve() for folder in folders}) != len(folders):
        raise SettingError("ner_out", "--sentiment-out, --ner-out and --topics-out must be different directories")
    if warm_start and teacher is None:
        raise SettingError("warm_start", "--warm-start needs --teacher (the tagger to start from)")
    if widen_to is not None and not init_from:
        raise SettingError("widen_to", "--widen-to widens the adapter a run starts from; give --init-from too")
    if add_topics_train and topics_out is None:
        raise SettingError("add_topics_train", "--add-topics-train adds topic examples; give --topics-out too")
    teacher_model = EntityTagger.load(teacher) if teacher is not None else None
    init_models = [EntityTagger.load(path) if model_task(path) == "ner" else TextClassifier.load(path)
                   for path in init_from or []]
    distil_models = [path if path.is_file() else TextClassifier.load(path) for path in distil_from or []]
    for path in distil_models:
        if isinstance(path, Path):
            soft_label_names(path)  # a file that is not soft labels fails here, before data and encoder load
    columns = {"data_dir": data_dir, "text_column": text_column, "label_column": label_column,
               "val_fraction": val_fraction, "seed": seed}
    o = locals()
    spec = JointSpec(tagger_head=head_config(o, ner_head), lora=lora_settings(o), tagging_repeat=ner_repeat,
                     tagging_weight=ner_weight, pseudo_tagging_weight=pseudo_weight,
                     distil_weight=distil_weight, distil_temperature=distil_temperature, widen_to=widen_to)
    sentiment = load_sentiment(sentiment_data, **columns)
    if add_sentiment_train:
        sentiment = add_train_examples(sentiment, add_sentiment_train, text_column=text_column, label_column=label_column)
    tasks = [SentenceTask("sentiment", sentiment, sentiment_out,
                          head_config(o, sentiment_head), smoothing=label_smoothing, weight=sentiment_weight)]
    if topics_out is not None:
        topic_data = load_topics(topics_data, **columns)
        if add_topics_train:
            topic_data = add_topic_examples(topic_data, add_topics_train, data_dir=data_dir, text_column=text_column,
                                            label_column=label_column)
        tasks.append(SentenceTask("topics", topic_data, topics_out,
                                  head_config(o, topics_head), smoothing=label_smoothing, weight=topics_weight))
    folds = nlupp_folds(ner_data, train_folds, test_folds)
    with recorded_data_warnings() as skipped:
        entities = load_entities(ner_data, data_dir=data_dir, val_fraction=val_fraction, seed=seed, **folds)
    if skipped:
        say(f"warning: {len(skipped)} span(s) in the data could not be used and were skipped")
    o = locals()
    args = training_arguments(o, sentiment_out, label_smoothing=0.0)  # each sentence task smooths its own loss
    trained = train_joint(tasks, entities, spec, args, load_encoder(o), ner_out, backend=backend,
                          command=command_line(ctx), skipped_spans=len(skipped), teacher=teacher_model,
                          warm_start=warm_start, init_from=init_models, distil_from=distil_models,
                          **training_hooks(ctx))
    summary = {key: value for key, value in trained.metrics.items() if key != "history"}
    summary = {**{f"{task}_model": str(path) for task, path in trained.paths.items()}, **folds, **summary}
    if json_output:
        echo_json(summary)
        return summary
    val = summary["val"]
    models = " and ".join(f"{task} -> {path}" for task, path in trained.paths.items())
    typer.echo(f"trained {models} (one shared adapter)")
    scores = ", ".join(f"{t.task} accuracy {val[f'{t.task}_accuracy']:.4f} (macro-F1 {val[f'{t.task}_macro_f1']:.4f})"
                       for t in tasks)
    typer.echo(f"  best epoch {summary['best_epoch']}: validation {scores}, entity micro-F1 {val['entity_f1']:.4f}, "
               f"{summary['train_seconds']:.0f} s")
    scored = f" --folds {','.join(map(str, folds['test_folds']))}" if folds else ""
    evals = "; ".join(f"agent eval {t.task} {t.out} --data {t.data.name} --split test" for t in tasks)
    typer.echo(f"  evaluate: {evals}; agent eval ner {trained.ner_path} --data {ner_data}{scored}")
    return summary


@app.command("decoding")
@friendly_errors
def decoding(
    model: Annotated[Path, typer.Argument(help="Entity tagger checkpoint directory.")],
    data: Annotated[str, typer.Option(help="The data the tagger was trained on: 'nlupp', a CoNLL or JSONL-with-spans file or folder.")] = "nlupp",
    data_dir: DataDir = None,
    train_folds: Annotated[str, typer.Option(help="NLU++ folds it was trained on (validation is carved from them as in training).")] = "0-17",
    test_folds: Annotated[str, typer.Option(help="NLU++ folds held out for testing (never read here).")] = "18,19",
    val_fraction: ValFraction = 0.1,
    seed: Seed = 0,
    threads: Threads = None,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Fit a tagger's tag-transition prior (decoding.json): transitions counted on its training data,
    weight chosen on its validation split. Training does this itself; this refits an existing model."""
    from finetune.data.folds import nlupp_folds
    from finetune.data.loaders import load_entities
    from finetune.data.tagging import recorded_data_warnings
    from finetune.models.loading import load_tagger
    from finetune.training.tagger import fit_decoding

    set_threads(threads)
    folds = nlupp_folds(data, train_folds, test_folds)
    with recorded_data_warnings():
        dataset = load_entities(data, data_dir=data_dir, val_fraction=val_fraction, seed=seed, **folds)
    summary = {"model": str(model), **fit_decoding(load_tagger(model), dataset)}
    if json_output:
        echo_json(summary)
    else:
        typer.echo(f"decoding prior -> {model / 'decoding.json'}: weight {summary['weight']:g}; validation entity F1 "
                   f"by weight {summary['validation_entity_f1_by_weight']}")
    return summary


@app.command("ensemble")
@friendly_errors
def ensemble(
    ctx: typer.Context,
    members: Annotated[list[Path], typer.Argument(help="Two or more checkpoints of one task: classifiers (same labels) or entity taggers (same tags).")],
    out: Annotated[Path, typer.Option(help="Ensemble folder to write (the members are copied into it).")],
    weights: Annotated[str | None, typer.Option(help="Comma-separated weight per member (default: equal).")] = None,
    data: Annotated[str, typer.Option(help="Data whose validation split scores the members and the ensemble: 'auto' (what the first member was trained on), a data set name or file, or 'none'.")] = "auto",
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    val_fraction: ValFraction = 0.1,
    seed: Seed = 0,
    train_folds: Annotated[str, typer.Option(help="Taggers on NLU++: the folds validation is carved from, as in training.")] = "0-17",
    prior_weight: Annotated[float | None, typer.Option(help="Taggers: weight of the ensemble's tag-transition prior (default: chosen on validation). Needed with --data none, e.g. for members refitted without validation.", min=0)] = None,
    threads: Threads = None,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Combine classifiers (or entity taggers) into one model that averages their probabilities, and
    score each member and the ensemble on the validation split (carved from train as in training;
    the test split is never read)."""
    from finetune.training.ensemble import EnsembleData, build_ensemble, parse_weights

    set_threads(threads)
    scoring = EnsembleData(data=data, data_dir=data_dir, text_column=text_column, label_column=label_column,
                           val_fraction=val_fraction, seed=seed, train_folds=train_folds)
    summary = build_ensemble(members, out, weights=parse_weights(weights), data=scoring, prior_weight=prior_weight,
                             command=command_line(ctx), progress=not json_output)
    if json_output:
        echo_json(summary)
        return summary
    folder, task, validation = summary["model"], summary["task"], summary.get("validation")
    if task == "ner":
        typer.echo(f"ner ensemble of {len(summary['members'])} -> {folder} (prior weight {summary['decoding']['weight']:g})")
        if validation:
            typer.echo(f"  validation ({validation['data']}, {validation['examples']} sentences): entity micro-F1")
            for name, f1 in validation["entity_f1"].items():
                typer.echo(f"    {name:<40} {f1:.4f}")
    else:
        typer.echo(f"{task} ensemble of {len(summary['members'])} -> {folder}")
        if validation:
            typer.echo(f"  validation ({validation['data']}, {validation['examples']} examples): accuracy / macro-F1")
            for name, row in [*validation["members"].items(), ("ensemble", validation["ensemble"])]:
                typer.echo(f"    {name:<40} {row['accuracy']:.4f} / {row['macro_f1']:.4f}")
    typer.echo(f"  evaluate: agent eval {task} {folder}")
    return summary


@app.command("soft-labels")
@friendly_errors
def soft_labels(
    teacher: Annotated[Path, typer.Argument(help="The teacher: a classifier checkpoint folder.")],
    texts: Annotated[Path, typer.Argument(help="Texts to label: a CSV/TSV (the --text-column) or a plain file, one text a line.")],
    out: Annotated[Path, typer.Option(help="JSONL to write: one {text, probs} record a text.")],
    text_column: TextColumn = "text",
    limit: Annotated[int | None, typer.Option(help="Label only a seeded sample of this many texts.", min=1)] = None,
    labels_csv: Annotated[Path | None, typer.Option(help="Also write a CSV (text, label, prob) of each text's most probable label, for training sets that take labels (e.g. --add-topics-train).")] = None,
    min_prob: Annotated[float, typer.Option(min=0.0, max=1.0, help="With --labels-csv: keep only texts whose most probable label has at least this probability.")] = 0.0,
    seed: Seed = 0,
    threads: Threads = None,
    device: DeviceOption = "cpu",
) -> None:
    """Label texts with a teacher's class probabilities, for a student's --soft-labels (distillation)."""
    from finetune.data.soft_labels import write_top_labels
    from finetune.models.device import resolve_device
    from finetune.training.distill import label_file

    set_threads(threads)
    count = label_file(teacher, texts, out, text_column=text_column, limit=limit, seed=seed,
                       device=resolve_device(device))
    typer.echo(f"{count} texts labelled by {teacher} -> {out}")
    if labels_csv is not None:
        kept = write_top_labels(out, labels_csv, min_prob=min_prob)
        typer.echo(f"{kept} of {count} texts with a label of probability >= {min_prob:g} -> {labels_csv}")


@app.command("lexical")
@friendly_errors
def lexical(
    model: Annotated[Path, typer.Argument(help="A sentence classifier's checkpoint folder (sentiment, topics, or intents without an out-of-scope threshold).")],
    data: Annotated[str | None, typer.Option(help="The data the model was trained on (default: the one its config names).")] = None,
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    val_fraction: ValFraction = 0.1,
    add_train: AddTrain = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the validation carve, as in training (default: the seed the model's config records).")] = None,
    ngram_max: Annotated[int, typer.Option(min=1, max=4, help="Longest word n-gram.")] = 2,
    min_df: Annotated[int, typer.Option(min=1, help="Keep n-grams found in at least this many training texts.")] = 2,
    remove: Annotated[bool, typer.Option("--remove", help="Delete the model's lexical part instead.")] = False,
    threads: Threads = None,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Give a classifier a word n-gram part read beside its head (TF-IDF + logistic regression, no
    second encoder pass), fitted on its training split; its weight is chosen on validation."""
    from finetune.models.checkpoint import load_checkpoint
    from finetune.models.lexical import LexicalSettings, remove_lexical
    from finetune.training.lexical import fit_lexical

    set_threads(threads)
    if remove:  # without loading: a part that no longer loads must still be removable
        if not (model / "config.json").is_file():
            raise typer.BadParameter(f"{model} is not a model folder (no config.json)", param_hint="MODEL")
        removed = remove_lexical(model)
        typer.echo(f"lexical part removed from {model}" if removed else f"{model} has no lexical part")
        return {"model": str(model), "removed": removed}
    checkpoint = load_checkpoint(model)
    if checkpoint.task not in ("intents", "sentiment", "topics"):
        raise typer.BadParameter(f"{model} holds a {checkpoint.task!r} model; a lexical part joins a sentence "
                                 "classifier (intents, sentiment or topics)", param_hint="MODEL")
    if add_train and checkpoint.task == "intents":
        raise typer.BadParameter("intent models are trained without added files", param_hint="--add-train")
    training = checkpoint.config.get("training", {})
    seed = int(training.get("seed", 0)) if seed is None else seed
    data = data or training.get("data")
    if not data:
        raise typer.BadParameter("the model's config names no training data; give --data", param_hint="--data")
    # The training commands' own loaders, so the split and the added files are read as training read them.
    load = {"intents": _intents_data, "sentiment": _sentiment_data, "topics": _topics_data}[checkpoint.task]
    dataset, _ = load({**locals(), "oos_data": None})
    report = fit_lexical(model, dataset, LexicalSettings(ngram_max=ngram_max, min_df=min_df), seed=seed,
                         progress=not json_output).to_dict()
    if json_output:
        echo_json(report)
    else:
        head, joined = report["head"], report["joined"]
        typer.echo(f"validation ({report['validation_examples']} texts): head alone accuracy {head['accuracy']:.4f}, "
                   f"macro-F1 {head['macro_f1']:.4f}; with words accuracy {joined['accuracy']:.4f}, "
                   f"macro-F1 {joined['macro_f1']:.4f}")
        if report["written"]:
            typer.echo(f"lexical part -> {model}: {report['terms']} n-grams, C {report['c']:g}, "
                       f"weight {report['weight']:g}, temperature {report['temperature']:g} ({report['seconds']:.0f} s)")
        else:
            typer.echo(f"no weight above 0 helped on validation: {model} keeps its head alone")
    return report


@app.command("checksums")
@friendly_errors
def checksums(
    model: Annotated[Path, typer.Argument(help="Checkpoint directory or ensemble folder.")],
    record: Annotated[bool, typer.Option("--record", help="Record the sha256 of every model file now there first (a model saved before checksums existed, or edited on purpose).")] = False,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Verify a model's recorded checksums and print the sha256 that pins it (--expect-sha256)."""
    from finetune.models.files import MANIFEST
    from finetune.models.loading import record_model, verify_model

    digest = record_model(model) if record else verify_model(model)
    if digest is None:
        raise ValueError(f"{model} has no {MANIFEST} (saved before checksums were recorded); "
                         f"record them with: agent finetune checksums {model} --record")
    summary = {"model": str(model), "sha256": digest, "recorded": record}
    if json_output:
        echo_json(summary)
    else:
        typer.echo(f"{model}: checksums {'recorded' if record else 'verified'}; sha256 {digest}")
    return summary

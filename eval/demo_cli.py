"""``agent demo`` (the product on its shipped defaults) and ``agent demo quantum`` (one quantum
head trained through every backend).

Both write under ``$QAGENT_HOME/demo`` (``~/.qagent/demo``) unless ``--out`` says otherwise, never
into the current folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finetune.cli.console import echo_json, friendly_errors

app = typer.Typer(
    invoke_without_command=True, subcommand_metavar="[quantum [OPTIONS]]", add_completion=False,
    pretty_exceptions_enable=False,
    help="Show the product on its shipped models: the assistant answers customers, a quantum-head "
         "classifier trains in seconds, the news monitor raises an alert. About two minutes on a laptop CPU.\n\n"
         "'agent demo quantum' instead trains one quantum head on a toy task through every backend.",
)

JsonOutput = Annotated[bool, typer.Option("--json", help="Print the summary as JSON (no progress lines).")]


def demo_home() -> Path:
    """``$QAGENT_HOME/demo`` (``~/.qagent/demo`` when ``QAGENT_HOME`` is unset)."""
    from agent.llm import qagent_home  # imported here: it pulls in langchain

    return qagent_home().expanduser() / "demo"


@app.callback()
@friendly_errors
def product(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Folder for summary.json, the classifier, the monitor's report (default: $QAGENT_HOME/demo).", show_default=False)] = None,
    json_output: JsonOutput = False,
    llm: Annotated[str, typer.Option("--llm", help="Reply model: local (SmolLM2-135M), hf:/path/to/model, or openai:URL:MODEL.")] = "local",
    epochs: Annotated[int, typer.Option(help="Most epochs of the classifier (it stops early).")] = 20,
    qubits: Annotated[int, typer.Option(help="Qubits per circuit of the classifier's quantum head.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed of the classifier's data split and training.")] = 0,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the models (default: torch's choice; 1 is steadier on a busy machine).")] = None,
) -> None:
    """Show the product: assistant replies, a quantum-head classifier, a news alert."""
    if ctx.invoked_subcommand is not None:
        return
    from agent.assistant import AssistantSettings, load_assistant
    from eval.product_demo import ProductDemoConfig, format_summary, run_product_demo

    config = ProductDemoConfig(out=out or demo_home(), llm=llm, epochs=epochs, n_qubits=qubits, seed=seed,
                               threads=threads, progress=not json_output)
    summary = run_product_demo(
        config,
        lambda: load_assistant(AssistantSettings(llm=llm, threads=threads, store="none"), quiet=json_output),
        say=lambda message: typer.echo(message, err=True),
    )
    if json_output:
        echo_json(summary)
        return
    typer.echo("")
    typer.echo(format_summary(summary))


@app.command()
@friendly_errors
def quantum(
    backend: Annotated[
        list[str] | None,
        typer.Option("--backend", "-b", help="Backend to train on (repeat for several). Default: exact, aer, aer:shots=1024, aer:noise=fake_sherbrooke,shots=1024."),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs per backend.")] = 20,
    samples: Annotated[int, typer.Option(help="Size of the generated two-moons data set.")] = 240,
    seed: Annotated[int, typer.Option(help="Random seed (data, weights, shots).")] = 0,
    out: Annotated[Path | None, typer.Option(help="Where to write demo_report.json and the PNG plots (default: $QAGENT_HOME/demo/quantum).", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Train a small quantum head on a toy task through every backend and compare them."""
    from eval.demo import DEFAULT_BACKENDS, DemoConfig, format_report, run_demo

    config = DemoConfig(
        backends=tuple(backend) if backend else DEFAULT_BACKENDS,
        epochs=epochs, n_samples=samples, seed=seed, progress=not json_output,
    )
    out = out or demo_home() / "quantum"
    report = run_demo(config, out)
    if json_output:
        echo_json(report)
        return
    typer.echo(format_report(report))
    typer.echo(f"\nreport and plots written to {out}/")

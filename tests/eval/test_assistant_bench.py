"""Assistant latency benchmark: percentiles of the three timed stages, on a stand-in assistant."""

from __future__ import annotations

from assistant_fakes import GOOD, make

from eval.assistant_bench import format_results, run_assistant_benchmark


def test_benchmark_reports_the_three_stages():
    assistant, _ = make([GOOD] * 20)
    messages = ["Where is my card?", "change my PIN", "weather today please"] * 3
    results = run_assistant_benchmark(assistant, messages, replies=3, progress=False)
    assert results["understand_route_retrieve_s"]["n"] == len(messages)
    assert results["first_token_s"]["n"] == 3 and results["whole_reply_s"]["p50"] >= 0
    text = format_results(results)
    assert "understand + route + retrieve" in text and "target p95 <= 0.100 s" in text

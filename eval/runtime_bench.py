"""Encoder inference speed: PyTorch against ONNX Runtime, on the same texts in the same run.

``python -m eval.runtime_bench [--texts 1024] [--threads 2] [--batch-size 64] [--model DIR]``
encodes distinct ``fin_tweets`` headlines (sentence and word features, as the news monitor asks)
with each runtime, alternating them ``--rounds`` times, and prints texts/s, their ratio and the
largest feature difference.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def headlines(data_dir: Path, count: int) -> list[str]:
    """Distinct ``fin_tweets`` test headlines, links stripped (what the monitor benchmark scores)."""
    from eval.monitor_bench import benchmark_feed

    records, _ = benchmark_feed(data_dir, count, body=False)
    return [record["title"] for record in records]


def run_runtime_benchmark(texts: list[str], *, threads: int, batch_size: int = 64, rounds: int = 3,
                          model: str | None = None) -> dict[str, Any]:
    """Best-of-``rounds`` texts/s of ``encode_all`` per runtime, and the largest feature difference."""
    import copy

    import torch

    from finetune.models.encoder import Encoder, EncoderConfig
    from finetune.data.tagging import words_with_offsets
    from finetune.models.tagger import EntityTagger

    torch.set_num_threads(threads)
    if model is None:
        encoder = Encoder.load(EncoderConfig(batch_size=batch_size))
    else:  # a model's own encoder, adapter merged (e.g. the shipped tagger's)
        encoder = EntityTagger.load(model).encoder
        encoder.config.batch_size = batch_size
    words = [words_with_offsets(t) for t in texts]
    encoders = {"torch": encoder, "onnx": copy.deepcopy(encoder)}
    with tempfile.TemporaryDirectory() as cache:
        encoders["onnx"].use_runtime("onnx", cache_dir=cache)
        outputs, best = {}, {name: 0.0 for name in encoders}
        for name, enc in encoders.items():  # warm-up
            enc.encode_all(texts[:batch_size], words=words[:batch_size])
        for _ in range(rounds):
            for name, enc in encoders.items():
                start = time.perf_counter()
                outputs[name] = enc.encode_all(texts, words=words)
                best[name] = max(best[name], len(texts) / (time.perf_counter() - start))
    difference = float((outputs["torch"][0] - outputs["onnx"][0]).abs().max())
    return {
        "texts": len(texts), "threads": threads, "batch_size": batch_size, "model": model or "all-MiniLM-L6-v2",
        "torch_texts_per_s": round(best["torch"], 1), "onnx_texts_per_s": round(best["onnx"], 1),
        "onnx_over_torch": round(best["onnx"] / best["torch"], 2), "max_sentence_feature_difference": difference,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> None:
    from finetune.data.loaders import resolve_data_dir

    parser = argparse.ArgumentParser(prog="python -m eval.runtime_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="an entity-tagger checkpoint whose encoder to time")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    texts = headlines(resolve_data_dir(args.data_dir), args.texts)
    result = run_runtime_benchmark(texts, threads=args.threads, batch_size=args.batch_size, rounds=args.rounds,
                                   model=args.model)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

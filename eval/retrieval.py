"""Retrieval quality: recall@k of the right knowledge-base answer for labelled queries.

A hit is right when the document's ``intents`` contain the query's gold intent. Three settings:

- ``no_intent``: vector similarity only (what retrieval alone achieves);
- ``gold_intent``: boosted with the *gold* intent, an upper bound on what the assistant gets
  from a perfect intent classifier (with the default boost it is 1.0 whenever every intent has a
  tagged answer, so it mainly checks coverage);
- ``gold_intent_soft``: the same with a soft boost (0.1), showing how far a weak prior moves things.

Run it::

    python -m eval.retrieval --data-dir ../shared/data [--kb KB | --index DIR] [--json]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from retrieval.index import DEFAULT_INTENT_BOOST, Index

SOFT_BOOST = 0.1


def recall_at_k(index: Index, texts: Sequence[str], labels: Sequence[str], *, ks: Sequence[int] = (1, 3),
                progress: bool = False) -> dict[str, Any]:
    """Recall@k per setting for queries ``texts`` with gold intents ``labels``.

    Returns:
        ``{"queries": N, "covered_intents": share of gold intents some document serves,
        "no_intent": {"recall@1": …, "recall@3": …}, "gold_intent": {…}, "gold_intent_soft": {…}}``.
    """
    if len(texts) != len(labels):
        raise ValueError(f"got {len(labels)} labels for {len(texts)} queries")
    if not texts:
        raise ValueError("recall needs at least one query")
    vectors = index.embed(texts, progress=progress)  # embed once, search three ways
    depth = max(ks)
    settings = {"no_intent": (None, 0.0), "gold_intent": (labels, DEFAULT_INTENT_BOOST),
                "gold_intent_soft": (labels, SOFT_BOOST)}
    report: dict[str, Any] = {"queries": len(texts),
                              "covered_intents": round(len(set(labels) & index.intents) / len(set(labels)), 4)}
    for name, (intents, boost) in settings.items():
        results = index.search_batch(vectors, k=depth, intents=intents, intent_boost=boost)
        ranks = [next((r for r, hit in enumerate(hits) if gold in hit.doc.intents), None)
                 for hits, gold in zip(results, labels, strict=True)]
        report[name] = {f"recall@{k}": round(sum(r is not None and r < k for r in ranks) / len(ranks), 4) for k in ks}
    return report


def evaluate_banking77(index: Index, *, data_dir: str | Path | None = None, limit: int | None = None,
                       progress: bool = False) -> dict[str, Any]:
    """``recall_at_k`` on the BANKING77 test split (the first ``limit`` queries when given)."""
    from finetune.data.loaders import load_intents

    test = load_intents("banking77", data_dir=data_dir).test[:limit]
    report = recall_at_k(index, [e.text for e in test], [e.label for e in test], progress=progress)
    return {"data": "banking77/test", "documents": len(index), "encoder": index.encoder_id, **report}


def main(
    data_dir: Annotated[Path | None, typer.Option(help="Shared data folder (default $QAGENT_DATA_DIR or ../shared/data).")] = None,
    kb: Annotated[Path | None, typer.Option(help="Knowledge base to index (default: the shipped banking one).")] = None,
    index_dir: Annotated[Path | None, typer.Option("--index", help="Use a built index instead of --kb.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N test queries.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recall@1/@3 of the right knowledge-base answer for BANKING77 test queries."""
    from finetune.cli.console import echo_json
    from finetune.models.encoder import Encoder, EncoderConfig
    from agent.shipped import KNOWLEDGE_BASE
    from retrieval.documents import load_documents
    from retrieval.index import build_index, read_meta

    start = time.perf_counter()
    if index_dir is not None:
        config = (read_meta(index_dir).get("encoder") or {}).get("config") or {}
        index = Index.load(index_dir, encoder=Encoder.load(EncoderConfig.from_dict(config)))
    else:
        path = kb or KNOWLEDGE_BASE
        encoder = Encoder.load(EncoderConfig(max_length=256))
        index = build_index(load_documents(path), encoder, progress=not json_output, source=str(path))
    report = evaluate_banking77(index, data_dir=data_dir, limit=limit, progress=not json_output)
    report["seconds"] = round(time.perf_counter() - start, 1)
    if json_output:
        echo_json(report)
        return
    typer.echo(f"{report['queries']} queries, {report['documents']} documents, encoder {report['encoder']}, "
               f"intents covered {report['covered_intents']:.0%}")
    for name in ("no_intent", "gold_intent_soft", "gold_intent"):
        typer.echo(f"  {name:<17} " + "  ".join(f"{k} {v:.3f}" for k, v in report[name].items()))


if __name__ == "__main__":  # pragma: no cover
    from finetune.cli.console import friendly_errors

    typer.run(friendly_errors(main))

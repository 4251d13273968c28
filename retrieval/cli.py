"""``agent index build|search|digest``: embed a knowledge base into a FAISS index, query it, pin it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finetune.cli.console import echo_json, friendly_errors
from retrieval.documents import DEFAULT_CHUNK_SIZE
from retrieval.index import DEFAULT_INTENT_BOOST, DEFAULT_MAX_LENGTH

app = typer.Typer(no_args_is_help=True, help="Build and search knowledge-base indexes (FAISS).")

ExpectSha256 = Annotated[str | None, typer.Option(
    "--expect-sha256", metavar="HEX",
    help="Refuse to start unless the index's meta.json has this sha256 (from 'agent index build' or 'agent index digest').")]


@app.command("build")
@friendly_errors
def build(
    kb: Annotated[Path, typer.Argument(help="Knowledge base: a .jsonl, .csv or .md file, or a folder of .md files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index directory to write (index.faiss, docs.jsonl, meta.json).")],
    chunk_size: Annotated[int, typer.Option(help="Most characters per chunk; longer texts split at sentence ends (0: never split).")] = DEFAULT_CHUNK_SIZE,
    encoder: Annotated[str, typer.Option(help="'default' (all-MiniLM-L6-v2) or a local Hugging Face model directory.")] = "default",
    max_length: Annotated[int, typer.Option(help="Sub-tokens embedded per document; longer ones are truncated.")] = DEFAULT_MAX_LENGTH,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Embed a knowledge base and write a verified FAISS index directory."""
    from finetune.models.encoder import Encoder, EncoderConfig
    from retrieval.documents import load_documents
    from retrieval.index import build_index

    docs = load_documents(kb, chunk_size=chunk_size or None)  # a broken KB fails before the model loads
    model = Encoder.load(EncoderConfig(model=encoder, max_length=max_length))
    from retrieval.index import index_digest

    index = build_index(docs, model, progress=not json_output, source=str(kb))
    index.save(out)
    summary = {"out": str(out), "documents": len({d.parent_id for d in docs}), "chunks": len(docs),
               "intents": len(index.intents), "encoder": index.encoder_id, "dim": index.dim,
               "sha256": index_digest(out)}
    if json_output:
        echo_json(summary)
        return
    typer.echo(f"indexed {summary['chunks']} chunks of {summary['documents']} documents ({summary['intents']} intents) "
               f"from {kb} with {summary['encoder']} (dim {summary['dim']}) into {out}/")
    typer.echo(f"sha256 {summary['sha256']} (pin it with --expect-sha256)")


@app.command("search")
@friendly_errors
def search(
    index_dir: Annotated[Path, typer.Argument(help="Index directory written by 'agent index build'.")],
    query: Annotated[str, typer.Argument(help="The question to look up.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Results to show.")] = 3,
    intent: Annotated[str | None, typer.Option(help="Boost answers tagged with this intent (e.g. card_arrival).")] = None,
    intent_boost: Annotated[float, typer.Option(help="Added to the score of answers tagged with --intent (2 ranks them first).")] = DEFAULT_INTENT_BOOST,
    json_output: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    expect_sha256: ExpectSha256 = None,
) -> None:
    """Search an index: best answers with their scores."""
    from finetune.models.encoder import Encoder, EncoderConfig
    from retrieval.index import Index

    if not query.strip():
        raise ValueError("query is empty; give the question to look up")
    index = Index.load(index_dir, expect_sha256=expect_sha256)  # files verified before the model loads
    index.set_encoder(Encoder.load(EncoderConfig.from_dict(index.encoder_config or {})), where=index_dir)
    hits = index.search(query, k=k, intent=intent, intent_boost=intent_boost)
    if json_output:
        echo_json({"query": query, "intent": intent, "hits": [hit.to_dict() for hit in hits]})
        return
    if intent and intent not in index.intents:
        typer.echo(f"note: no document is tagged with intent {intent!r}; ranking by similarity only")
    for rank, hit in enumerate(hits, start=1):
        tag = "  [intent]" if hit.matched_intent else ""
        typer.echo(f"{rank}. {hit.score:.3f} (cosine {hit.vector_score:.3f}){tag}  {hit.doc.id}  {hit.doc.title}")
        text = hit.doc.text if len(hit.doc.text) <= 200 else hit.doc.text[:197] + "..."
        typer.echo(f"   {text}")


@app.command("digest")
@friendly_errors
def digest(
    index_dir: Annotated[Path, typer.Argument(help="Index directory written by 'agent index build'.")],
) -> None:
    """Verify an index's files and print the sha256 that pins it (--expect-sha256 of chat, ask, serve, search)."""
    from retrieval.index import index_digest

    typer.echo(index_digest(index_dir))

"""The knowledge base the assistant answers from, and its FAISS index.

The shipped base (``agent/assets/knowledge/banking.jsonl``) is indexed on first use into
``$QAGENT_HOME/cache/index/<key>/``, the key hashing the knowledge-base file and the encoder, so
an edited base or another encoder gets a fresh index and nothing stale is ever searched. Users
with their own base build an index once with ``agent index build`` and pass its directory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from agent.llm import qagent_home
from agent.shipped import KNOWLEDGE_BASE

logger = logging.getLogger("agent.knowledge")


def default_index_dir(kb: Path, encoder: Any) -> Path:
    """Where the cached index of ``kb`` embedded by ``encoder`` lives."""
    from retrieval.index import encoder_id

    digest = hashlib.sha256(kb.read_bytes())
    digest.update(encoder_id(encoder).encode())
    return qagent_home() / "cache" / "index" / digest.hexdigest()[:16]


def load_index(encoder: Any, *, index_dir: str | Path | None = None, kb: str | Path | None = None) -> Any:
    """The index to search: ``index_dir`` if given, else the (cached) index of ``kb`` (default: shipped).

    Args:
        encoder: The plain encoder; it must be the one the index was built with.
        index_dir: A directory written by ``agent index build``.
        kb: A knowledge base (JSONL, CSV, Markdown file or folder) to index and cache.
    """
    from retrieval.documents import load_documents
    from retrieval.index import Index, build_index

    if index_dir is not None:
        return Index.load(index_dir, encoder=encoder)
    source = Path(kb) if kb is not None else KNOWLEDGE_BASE
    if not source.exists():
        raise FileNotFoundError(f"knowledge base {source} not found")
    if source.is_file():
        cached = default_index_dir(source, encoder)
        if (cached / "meta.json").is_file():
            return Index.load(cached, encoder=encoder)
    else:
        cached = None
    logger.info("indexing knowledge base %s", source)
    index = build_index(load_documents(source), encoder, source=str(source))
    if cached is not None:
        _save_atomically(index, cached)
    return index


def _save_atomically(index: Any, target: Path) -> None:
    """Write to a sibling temp dir, then rename: two processes starting at once never see half an index."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        index.save(tmp)
        os.replace(tmp, target)
    except OSError:
        if not (target / "meta.json").is_file():
            logger.warning("could not cache the knowledge-base index in %s; it will be rebuilt next time", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

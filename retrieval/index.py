"""FAISS vector index over knowledge-base documents, saved as FAISS's own file plus JSON.

An index directory holds::

    index.faiss   faiss.write_index of an IndexFlatIP over L2-normalised vectors (cosine)
    docs.jsonl    one Document per line, in index order
    meta.json     format, encoder id and config, dim, count, sha256 of the two files above

Nothing is pickled. ``Index.load`` checks both checksums before FAISS parses a byte, then the
dimension and the encoder, and refuses a mismatch with a message saying how to rebuild. The
checksums detect corruption, not tampering (an edited file with a recomputed checksum loads); a
deployment pins the sha256 of ``meta.json`` (:func:`index_digest`, one digest covering every file)
with ``expect_sha256``.

Exact search (IndexFlatIP) costs N x D multiply-adds per query: about 40k for the 98-answer default
base, microseconds. An IVF index (faiss.IndexIVFFlat, nprobe ~ 8-16) starts to pay above roughly
100k chunks, where a flat scan takes milliseconds per query; below that its training and recall
loss buy nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from finetune.strict_json import jsonl_lines
from retrieval.documents import Document

FORMAT = "qagent-index/1"
INDEX_FILE, DOCS_FILE, META_FILE = "index.faiss", "docs.jsonl", "meta.json"
# Cosine similarities lie in [-1, 1], so a boost of 2 puts every document tagged with the intent
# above every untagged one, whatever the vectors say; a smaller boost makes the intent a soft prior.
DEFAULT_INTENT_BOOST = 2.0
# Sub-tokens an encoder reads per document when building: the longest default answers (~600
# characters with the title) run past MiniLM's usual 128; its position table allows 512.
DEFAULT_MAX_LENGTH = 256


class RetrievalError(RuntimeError):
    """An index cannot be built, loaded or searched (missing, corrupted, mismatched encoder)."""


class TextEncoder(Protocol):
    """What an index needs from an encoder (``finetune.models.encoder.Encoder`` is one)."""

    dim: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Any: ...


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        doc: The document (or chunk) found.
        score: What results are ranked by: ``vector_score`` plus the boost when ``matched_intent``.
        vector_score: Cosine similarity between query and document, in [-1, 1].
        matched_intent: The document is tagged with the intent given to the search.
    """

    doc: Document
    score: float
    vector_score: float
    matched_intent: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.doc.id, "title": self.doc.title, "score": round(self.score, 6),
                "vector_score": round(self.vector_score, 6), "matched_intent": self.matched_intent,
                "intents": list(self.doc.intents), "text": self.doc.text}


def encoder_id(encoder: TextEncoder) -> str:
    """What must match between an index and the encoder that queries it: the model (and LoRA
    adapter) fingerprint, plus the pooling when it is not the default mean pooling."""
    config = getattr(encoder, "config", None)
    base = getattr(encoder, "fingerprint", None) or getattr(config, "model_id", None) or type(encoder).__name__
    pooling = getattr(config, "pooling", "mean")
    return base if pooling == "mean" else f"{base};pooling={pooling}"


def embedding_text(doc: Document) -> str:
    """The text embedded for a document: its title (question-style, like queries) then its text."""
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def build_index(docs: Sequence[Document], encoder: TextEncoder, *, progress: bool = False,
                source: str | None = None) -> Index:
    """Embed ``docs`` with ``encoder`` and put them in an exact inner-product FAISS index.

    Args:
        docs: Documents (already chunked), e.g. from ``load_documents``.
        encoder: Anything with ``dim`` and ``encode(texts, progress=)``; vectors are normalised here.
        progress: Show a progress bar while embedding.
        source: The knowledge base path, recorded in meta.json for rebuild hints.
    """
    import faiss

    if not docs:
        raise RetrievalError("cannot build an index from zero documents")
    vectors = _normalised(encoder.encode([embedding_text(d) for d in docs], progress=progress))
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    config = getattr(encoder, "config", None)
    return Index(index, list(docs), encoder_id=encoder_id(encoder), encoder=encoder, source=source,
                 encoder_config=config.to_dict() if hasattr(config, "to_dict") else None)


class Index:
    """Documents plus their FAISS index; searchable by text (needs an encoder) or by embedding."""

    def __init__(self, faiss_index: Any, docs: list[Document], *, encoder_id: str,
                 encoder: TextEncoder | None = None, encoder_config: dict[str, Any] | None = None,
                 source: str | None = None) -> None:
        if faiss_index.ntotal != len(docs):
            raise RetrievalError(f"FAISS index holds {faiss_index.ntotal} vectors for {len(docs)} documents")
        self.faiss_index, self.docs, self.encoder = faiss_index, docs, encoder
        self.encoder_id, self.encoder_config, self.source = encoder_id, encoder_config, source
        self._by_intent: dict[str, list[int]] = {}
        for row, doc in enumerate(docs):
            for intent in doc.intents:
                self._by_intent.setdefault(intent, []).append(row)
        self._vectors: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.faiss_index.d)

    def __len__(self) -> int:
        return len(self.docs)

    @property
    def intents(self) -> set[str]:
        """Every intent some document is tagged with."""
        return set(self._by_intent)

    def save(self, directory: str | Path) -> Path:
        """Write ``index.faiss``, ``docs.jsonl`` and, last, ``meta.json`` into ``directory``."""
        import faiss

        from finetune.models.checkpoint import write_json

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f".{INDEX_FILE}.tmp{os.getpid()}"
        try:  # write beside, then rename: a crash never leaves half an index behind a valid name
            faiss.write_index(self.faiss_index, str(tmp))
            os.replace(tmp, path / INDEX_FILE)
        finally:
            tmp.unlink(missing_ok=True)
        lines = "".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in self.docs)
        docs_tmp = path / f".{DOCS_FILE}.tmp{os.getpid()}"
        docs_tmp.write_text(lines, encoding="utf-8")
        os.replace(docs_tmp, path / DOCS_FILE)
        write_json(path / META_FILE, {
            "format": FORMAT, "encoder": {"id": self.encoder_id, "config": self.encoder_config},
            "dim": self.dim, "count": len(self.docs), "index_type": type(self.faiss_index).__name__,
            "metric": "inner_product (cosine on normalised vectors)", "source": self.source,
            "sha256": {INDEX_FILE: _sha256(path / INDEX_FILE), DOCS_FILE: _sha256(path / DOCS_FILE)},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        return path

    @classmethod
    def load(cls, directory: str | Path, encoder: TextEncoder | None = None, *,
             expect_sha256: str | None = None) -> Index:
        """Load and verify an index directory.

        Args:
            directory: What ``Index.save`` (``agent index build``) wrote.
            encoder: The encoder for text queries; checked against the one that built the index.
                Without it only embeddings can be searched.
            expect_sha256: The pinned sha256 of the index's ``meta.json`` (see :func:`index_digest`).

        Raises:
            RetrievalError: Not the pinned index, files missing, checksums wrong, dimension or
                encoder mismatched; the message says how to rebuild.
        """
        import faiss

        path = Path(directory)
        meta = verified_meta(path, expect_sha256)
        fix = f"rebuild it with: agent index build {meta.get('source') or 'KB'} --out {path}"
        try:
            faiss_index = faiss.read_index(str(path / INDEX_FILE))
            docs = [Document.from_dict(json.loads(line))
                    for _, line in jsonl_lines((path / DOCS_FILE).read_text(encoding="utf-8"))]
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise RetrievalError(f"{path} cannot be read ({str(exc).splitlines()[0][:120]}); {fix}") from None
        if faiss_index.d != meta.get("dim") or faiss_index.ntotal != meta.get("count") or len(docs) != meta.get("count"):
            raise RetrievalError(
                f"{path}: meta.json says dim {meta.get('dim')} and {meta.get('count')} documents, the files hold "
                f"dim {faiss_index.d}, {faiss_index.ntotal} vectors and {len(docs)} documents; {fix}")
        index = cls(faiss_index, docs, encoder_id=str((meta.get("encoder") or {}).get("id")),
                    encoder_config=(meta.get("encoder") or {}).get("config"), source=meta.get("source"))
        if encoder is not None:
            index.set_encoder(encoder, where=path)
        return index

    def set_encoder(self, encoder: TextEncoder, *, where: str | Path = "this index") -> None:
        """Use ``encoder`` for text queries after checking it is the one the index was built with."""
        fix = f"rebuild it with: agent index build {self.source or 'KB'} --out {where}"
        if encoder.dim != self.dim:
            raise RetrievalError(f"{where} holds {self.dim}-dim vectors but the encoder gives {encoder.dim}-dim ones; "
                                 f"query it with the encoder it was built with ({self.encoder_id}) or {fix}")
        if encoder_id(encoder) != self.encoder_id:
            raise RetrievalError(f"{where} was built with encoder {self.encoder_id!r}, not {encoder_id(encoder)!r}; "
                                 f"query it with that encoder or {fix}")
        self.encoder = encoder

    def embed(self, queries: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Normalised query vectors ``[N, dim]``."""
        if self.encoder is None:
            raise RetrievalError("this index was loaded without an encoder; pass encoder= to Index.load "
                                 "or search with embeddings")
        return _normalised(self.encoder.encode(list(queries), progress=progress))

    def search(self, query: str | Any, k: int = 3, intent: str | None = None,
               intent_boost: float = DEFAULT_INTENT_BOOST) -> list[Hit]:
        """The ``k`` best documents for one query (text, or an embedding of shape ``[dim]``).

        Ranking is by cosine similarity plus ``intent_boost`` for documents tagged with ``intent``;
        with the default boost every tagged document ranks above every untagged one, and tagged
        documents keep their vector order among themselves. An intent no document has adds nothing.
        """
        vectors = self.embed([query]) if isinstance(query, str) else _normalised(query).reshape(1, -1)
        return self.search_batch(vectors, k=k, intents=[intent], intent_boost=intent_boost)[0]

    def search_batch(self, queries: Sequence[str] | Any, k: int = 3, intents: Sequence[str | None] | None = None,
                     intent_boost: float = DEFAULT_INTENT_BOOST, *, progress: bool = False) -> list[list[Hit]]:
        """``search`` for many queries at once (texts, or embeddings ``[N, dim]``), one FAISS call."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        is_text = isinstance(queries, (list, tuple)) and all(isinstance(q, str) for q in queries)
        vectors = self.embed(queries, progress=progress) if is_text else _normalised(queries)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"query embeddings must have shape [N, {self.dim}], got {tuple(vectors.shape)}")
        intents = list(intents) if intents is not None else [None] * len(vectors)
        if len(intents) != len(vectors):
            raise ValueError(f"got {len(intents)} intents for {len(vectors)} queries")
        if len(vectors) == 0:
            return []
        k = min(k, len(self.docs))
        tagged = [self._by_intent.get(i, []) if i and intent_boost else [] for i in intents]
        # The top k untagged documents are always among the top k + (tagged count) by vector score;
        # tagged ones that faiss does not return are scored directly below.
        depth = min(len(self.docs), k + max(len(t) for t in tagged))
        scores, rows = self.faiss_index.search(vectors, depth)
        return [self._rank(vectors[q], dict(zip(rows[q].tolist(), scores[q].tolist(), strict=True)),
                           set(tagged[q]), k, intent_boost) for q in range(len(vectors))]

    def _rank(self, vector: np.ndarray, found: dict[int, float], tagged: set[int], k: int, boost: float) -> list[Hit]:
        missing = sorted(tagged - set(found))
        if missing:
            if self._vectors is None:
                self._vectors = self.faiss_index.reconstruct_n(0, self.faiss_index.ntotal)
            found.update(zip(missing, (self._vectors[missing] @ vector).tolist(), strict=True))
        ranked = sorted(found, key=lambda row: (-(found[row] + (boost if row in tagged else 0.0)), row))
        return [Hit(self.docs[row], found[row] + (boost if row in tagged else 0.0), found[row], row in tagged)
                for row in ranked[:k]]


def verified_meta(directory: str | Path, expect_sha256: str | None = None) -> dict[str, Any]:
    """``meta.json`` of an index directory after checking it is the pinned one (when
    ``expect_sha256`` is given) and that both files match their checksums in it."""
    path = Path(directory)
    if expect_sha256 is not None:
        from finetune.models.integrity import check_pinned

        read_meta(path)  # no index at all: say how to build one
        check_pinned(path / META_FILE, expect_sha256, f"index {path}",
                     f"rebuild it, or pin the new digest from: agent index digest {path}", error=RetrievalError)
    meta = read_meta(path)
    fix = f"rebuild it with: agent index build {meta.get('source') or 'KB'} --out {path}"
    for name in (INDEX_FILE, DOCS_FILE):
        expected = (meta.get("sha256") or {}).get(name)
        if not (path / name).is_file():
            raise RetrievalError(f"{path / name} is missing; {fix}")
        if _sha256(path / name) != expected:
            raise RetrievalError(f"{path / name} does not match its checksum in meta.json (corrupted or edited); {fix}")
    return meta


def index_digest(directory: str | Path) -> str:
    """The sha256 of a verified index's ``meta.json``: one digest that covers every file of the
    index (meta.json holds the others' checksums), for ``--expect-sha256``."""
    verified_meta(directory)
    return _sha256(Path(directory) / META_FILE)


def read_meta(directory: str | Path) -> dict[str, Any]:
    """Read an index directory's ``meta.json`` (format checked), or say how to build one."""
    path = Path(directory)
    build = f"build one with: agent index build KB --out {path}"
    if not path.is_dir():
        raise RetrievalError(f"no index at {path}; {build}")
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RetrievalError(f"{path} has no {META_FILE}, so it is not a qagent index; {build}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RetrievalError(f"{path / META_FILE} is unreadable ({exc}); {build}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise RetrievalError(f"{path} has index format {found!r}, this qagent reads {FORMAT!r}; {build}")
    return meta


def _normalised(vectors: Any) -> np.ndarray:
    """float32, C-contiguous, unit rows (zero rows stay zero): inner product becomes cosine."""
    array = vectors.detach().cpu().numpy() if hasattr(vectors, "detach") else np.asarray(vectors)
    array = np.ascontiguousarray(array, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def _sha256(path: Path) -> str:
    from finetune.models.integrity import sha256_file  # one hashing for indexes and checkpoints

    return sha256_file(path)

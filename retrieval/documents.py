"""Knowledge-base documents: load them from JSONL, CSV or a folder of Markdown, and chunk them.

Every problem with a knowledge base is a :class:`KnowledgeBaseError` whose message is one line
saying what is wrong and where (``file:line``), so ``agent index build`` can print it as it is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from finetune.strict_json import jsonl_lines

FORMATS = (".jsonl", ".csv", ".md", "a folder of .md files")
# Characters, not tokens: deterministic without a tokenizer. MiniLM reads 128-256 sub-tokens, about
# 4-5 characters each in English, so 1000 characters keeps every default answer (≤ 600) whole.
DEFAULT_CHUNK_SIZE = 1000
_KNOWN_KEYS = ("id", "title", "text", "intents", "followups")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SLUG = re.compile(r"[^a-z0-9]+")
_META_LINE = re.compile(r"^(intents|followups)\s*:\s*(.*)$", re.IGNORECASE)


class KnowledgeBaseError(ValueError):
    """A knowledge base cannot be read: bad format, broken line, empty text, duplicate id."""


@dataclass(frozen=True)
class Document:
    """One retrievable answer (or one chunk of a longer one).

    Attributes:
        id: Stable id; chunks of a long document are ``<doc-id>#<n>`` counting from 0.
        title: Short question-style title (may be empty).
        text: The answer text that is embedded, retrieved and quoted.
        intents: Intent labels this answer serves (used for the intent boost).
        followups: Suggested next steps or related questions.
        source: Where it came from, ``file:line`` (JSONL/CSV) or ``file`` (Markdown).
        metadata: Any other fields of the record, plus ``parent_id``/``chunk`` for chunks.
    """

    id: str
    title: str
    text: str
    intents: tuple[str, ...] = ()
    followups: tuple[str, ...] = ()
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def parent_id(self) -> str:
        """The id of the document this chunk came from (its own id when it was not split)."""
        return str(self.metadata.get("parent_id", self.id))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["intents"], data["followups"] = list(self.intents), list(self.followups)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(
            id=str(data["id"]), title=str(data.get("title", "")), text=str(data["text"]),
            intents=tuple(data.get("intents", ())), followups=tuple(data.get("followups", ())),
            source=str(data.get("source", "")), metadata=dict(data.get("metadata", {})),
        )


def load_documents(path: str | Path, *, chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> list[Document]:
    """Load a knowledge base and chunk its long texts.

    Args:
        path: A ``.jsonl`` or ``.csv`` file, a ``.md`` file (each ``##`` section is a document),
            or a folder of ``.md`` files (read in sorted order, searched recursively).
        chunk_size: Most characters per chunk; ``None`` keeps every text whole.

    Raises:
        KnowledgeBaseError: The path is missing or of an unknown format, a line is broken, a text
            is empty, or two documents share an id.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.md") if p.is_file())
        if not files:
            raise KnowledgeBaseError(f"{path} holds no .md files; a knowledge base folder is read as Markdown")
        docs = [doc for file in files for doc in _read_markdown(file, root=path)]
    elif not path.is_file():
        raise KnowledgeBaseError(f"knowledge base {path} does not exist")
    elif path.suffix.lower() == ".jsonl":
        docs = _read_jsonl(path)
    elif path.suffix.lower() == ".csv":
        docs = _read_csv(path)
    elif path.suffix.lower() in (".md", ".markdown"):
        docs = _read_markdown(path, root=path.parent)
    else:
        suffix = path.suffix or "(none)"
        raise KnowledgeBaseError(f"{path}: unknown knowledge base format {suffix!r}; use one of {', '.join(FORMATS)}")
    if not docs:
        raise KnowledgeBaseError(f"{path} holds no documents")
    seen: dict[str, str] = {}
    for doc in docs:
        if doc.id in seen:
            raise KnowledgeBaseError(f"{doc.source}: duplicate id {doc.id!r} (first at {seen[doc.id]})")
        seen[doc.id] = doc.source
    return chunk_documents(docs, chunk_size) if chunk_size is not None else docs


def chunk_documents(docs: list[Document], chunk_size: int) -> list[Document]:
    """Split texts longer than ``chunk_size`` characters at sentence ends (words if need be).

    A document that fits keeps its id; a longer one becomes ``<id>#0``, ``<id>#1``, … with the same
    title, intents and followups, and ``metadata`` gaining ``parent_id`` and ``chunk``. The split
    depends only on the text, so rebuilding an unchanged knowledge base gives the same ids.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 50:
        raise ValueError(f"chunk_size must be an int >= 50 characters, got {chunk_size!r}")
    out: list[Document] = []
    for doc in docs:
        pieces = split_text(doc.text, chunk_size)
        if len(pieces) == 1:
            out.append(doc)
            continue
        for n, piece in enumerate(pieces):
            meta = {**doc.metadata, "parent_id": doc.id, "chunk": n}
            out.append(replace(doc, id=f"{doc.id}#{n}", text=piece, metadata=meta))
    return out


def split_text(text: str, size: int) -> list[str]:
    """Greedily pack sentences into pieces of at most ``size`` characters."""
    units: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        while len(sentence) > size:  # one over-long sentence: cut at the last space that fits
            cut = sentence.rfind(" ", 0, size + 1)
            cut = cut if cut > 0 else size
            units.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            units.append(sentence)
    pieces: list[str] = []
    for unit in units:
        if pieces and len(pieces[-1]) + 1 + len(unit) <= size:
            pieces[-1] = f"{pieces[-1]} {unit}"
        else:
            pieces.append(unit)
    return pieces or [text]


def slugify(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")


def _make(record: dict[str, Any], where: str, default_id: str | None = None) -> Document:
    """Validate one record (from any format) and turn it into a Document."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise KnowledgeBaseError(f"{where}: empty or missing 'text'")
    title = record.get("title") or ""
    if not isinstance(title, str):
        raise KnowledgeBaseError(f"{where}: 'title' must be a string, got {type(title).__name__}")
    doc_id = record.get("id") or default_id or slugify(title)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise KnowledgeBaseError(f"{where}: a document needs an 'id' (or a 'title' to derive one from)")
    if "#" in doc_id:
        raise KnowledgeBaseError(f"{where}: id {doc_id!r} must not contain '#' (reserved for chunk ids)")
    lists = {}
    for key in ("intents", "followups"):
        value = record.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise KnowledgeBaseError(f"{where}: {key!r} must be a list of strings, got {value!r}")
        lists[key] = tuple(v.strip() for v in value if v.strip())
    extra = {k: v for k, v in record.items() if k not in _KNOWN_KEYS}
    return Document(id=doc_id.strip(), title=title.strip(), text=text.strip(), source=where, metadata=extra, **lists)


def _read_jsonl(path: Path) -> list[Document]:
    docs = []
    for number, line in jsonl_lines(_read_text(path)):
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KnowledgeBaseError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise KnowledgeBaseError(f"{where}: expected a JSON object, got {type(record).__name__}")
        docs.append(_make(record, where))
    return docs


def _read_csv(path: Path) -> list[Document]:
    rows = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = [h.strip().lower() for h in next(rows, [])]
    if "text" not in header:
        raise KnowledgeBaseError(f"{path}:1: the header needs a 'text' column, got {header}")
    docs = []
    for row in rows:
        where = f"{path}:{rows.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise KnowledgeBaseError(f"{where}: {len(row)} cells for {len(header)} columns (quote cells holding commas)")
        record: dict[str, Any] = dict(zip(header, row, strict=True))
        for key in ("intents", "followups"):
            if key in record:
                record[key] = [v for v in record[key].split("|") if v.strip()]
        docs.append(_make(record, where))
    return docs


def _read_markdown(path: Path, *, root: Path) -> list[Document]:
    """``##`` sections are documents (id ``<file-path>/<heading-slug>``); else the file is one
(id: its path below the folder, slugged, without ``.md``)."""
    lines = _read_text(path).splitlines()
    file_id = "/".join(slugify(part) for part in path.relative_to(root).with_suffix("").parts)
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")]
    if not starts:
        title = next((line[2:].strip() for line in lines if line.startswith("# ")), path.stem)
        body = [line for line in lines if not line.startswith("# ")]
        return [_markdown_doc(body, title, file_id, str(path))]
    docs = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        title = lines[start][3:].strip()
        where = f"{path}:{start + 1}"
        docs.append(_markdown_doc(lines[start + 1 : end], title, f"{file_id}/{slugify(title) or n}", where))
    return docs


def _markdown_doc(lines: list[str], title: str, doc_id: str, where: str) -> Document:
    """Lines ``intents: a, b`` and ``followups: x | y`` set those fields; the rest is the text."""
    record: dict[str, Any] = {"id": doc_id, "title": title, "intents": [], "followups": []}
    text = []
    for line in lines:
        match = _META_LINE.match(line.strip())
        if match:
            key, value = match.group(1).lower(), match.group(2)
            record[key] = [v.strip() for v in re.split(r"[|,]" if key == "intents" else r"\|", value) if v.strip()]
        else:
            text.append(line)
    record["text"] = re.sub(r"\n{3,}", "\n\n", "\n".join(text)).strip()
    return _make(record, where)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeBaseError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise KnowledgeBaseError(f"{path}: cannot read ({exc.strerror})") from None

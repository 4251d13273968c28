"""JSON that every parser reads, and JSON Lines read back as written.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity`` by default, which JSON does not allow
(``jq``, browsers and most other parsers reject the whole document). A broken model's
probabilities are NaN, so every JSON the commands print or save goes through :func:`dumps`.

``json.dumps(..., ensure_ascii=False)`` leaves U+2028, U+0085 and other characters that
``str.splitlines`` treats as line breaks raw inside a string (valid JSON; finance headlines carry
them), so every JSON Lines reader splits records with :func:`jsonl_lines`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (numpy's and torch's included) replaced by None,
    recursively through mappings, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays, tensors
        return finite(value.tolist())
    return value


def dumps(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(data)`` with ``allow_nan=False`` (kwargs as json.dumps's)."""
    return json.dumps(finite(data), allow_nan=False, **kwargs)


def jsonl_lines(content: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of each non-blank line of JSON Lines ``content``, numbered from 1.

    Records end at ``"\n"`` alone (a ``"\r"`` before it is stripped with the other whitespace):
    ``str.splitlines`` would also cut a record at a U+2028 or U+0085 inside one of its strings.
    """
    for number, line in enumerate(content.split("\n"), start=1):
        if line.strip():
            yield number, line

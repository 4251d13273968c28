"""JSON that every parser reads: NaN and infinity become ``null``.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity`` by default, which JSON does not allow
(``jq``, browsers and most other parsers reject the whole document). A broken model's
probabilities are NaN, so every JSON the commands print or save goes through :func:`dumps`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
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

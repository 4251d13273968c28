"""Text shown to the people using the page: file names, never the server's folders.

Error messages from the libraries name the files they failed on by full path (an upload's
``/tmp/gradio/<hash>/feed.xml``, a database under ``$QAGENT_HOME``); on a served page that tells
anyone who can open it how the server's disk is laid out. :func:`hide_paths` keeps the file name.
"""

from __future__ import annotations

import re

# An absolute POSIX path of two or more parts: a "/" not inside a word, a URL ("https://…/…") or a
# relative path ("dbs/x.db"), then folder names, then the last part (kept; the last folder's name for a path ending in "/"). Quotes, backticks,
# whitespace, ")" and "," end a path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"`(),<>]+/)+([^\s/'\"`(),<>]*)")


def hide_paths(text: str) -> str:
    """``text`` with every absolute file path replaced by its last part (the file name)."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(0).rstrip("/").rsplit("/", 1)[-1], text)

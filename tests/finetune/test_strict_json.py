"""JSON every parser reads, and JSON Lines split only where a record ends."""

from __future__ import annotations

import json
import math

from finetune.strict_json import dumps, jsonl_lines


def test_nan_and_infinity_become_null():
    assert json.loads(dumps({"p": [math.nan, 0.5], "x": math.inf})) == {"p": [None, 0.5], "x": None}


def test_jsonl_records_keep_unicode_line_separators_and_their_line_numbers():
    records = [{"text": "LVMH\x85 #Stock"}, {"text": "Rates\u2028rise"}, {"text": "plain"}]
    content = json.dumps(records[0], ensure_ascii=False) + "\r\n\n" + "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in records[1:])
    assert len(content.splitlines()) > 4  # what a splitlines reader would have cut
    lines = list(jsonl_lines(content))
    assert [number for number, _ in lines] == [1, 3, 4]
    assert [json.loads(line) for _, line in lines] == records

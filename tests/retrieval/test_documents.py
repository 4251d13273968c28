"""Knowledge-base loading: the three formats, chunking with stable ids, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.shipped import KNOWLEDGE_BASE
from retrieval.documents import (
    Document,
    KnowledgeBaseError,
    chunk_documents,
    load_documents,
)

LONG = " ".join(f"Sentence number {n} says something useful about fees." for n in range(40))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_jsonl_keeps_fields_and_extra_keys_as_metadata(tmp_path):
    path = write_jsonl(tmp_path / "kb.jsonl", [
        {"id": "a", "title": "Card?", "text": "Cards arrive in 3 days.", "intents": ["card_arrival"],
         "followups": ["Track it"], "lang": "en"},
        {"title": "No id here", "text": "Derived from the title."},
    ])
    first, second = load_documents(path)
    assert first == Document("a", "Card?", "Cards arrive in 3 days.", ("card_arrival",), ("Track it",),
                             f"{path}:1", {"lang": "en"})
    assert second.id == "no-id-here" and second.intents == ()


def test_csv_with_pipe_separated_lists(tmp_path):
    path = tmp_path / "kb.csv"
    path.write_text("id,title,text,intents,followups\n"
                    'fee,Fees?,"Top-ups are free, transfers 1%.",top_up_failed|transfer_fee_charged,Why?|How?\n',
                    encoding="utf-8")
    (doc,) = load_documents(path)
    assert doc.text == "Top-ups are free, transfers 1%."
    assert doc.intents == ("top_up_failed", "transfer_fee_charged") and doc.followups == ("Why?", "How?")
    assert doc.source == f"{path}:2"


def test_markdown_folder_sections_and_whole_files(tmp_path):
    (tmp_path / "cards.md").write_text(
        "# Cards\n\nintro ignored\n\n## Card not arrived\nintents: card_arrival, card_delivery_estimate\n"
        "followups: Track it | Order again\nIt takes 3 to 5 working days.\n\n## Lost card\nFreeze it in the app.\n",
        encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pin.md").write_text("# Change your PIN\nintents: change_pin\nGo to Cards > PIN.\n", encoding="utf-8")
    docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["cards/card-not-arrived", "cards/lost-card", "sub/pin"]
    assert docs[0].intents == ("card_arrival", "card_delivery_estimate")
    assert docs[0].followups == ("Track it", "Order again")
    assert docs[0].text == "It takes 3 to 5 working days."
    assert docs[2].title == "Change your PIN" and docs[2].text == "Go to Cards > PIN."


def test_long_texts_split_into_stable_chunk_ids(tmp_path):
    path = write_jsonl(tmp_path / "kb.jsonl", [{"id": "long", "text": LONG, "intents": ["x"]},
                                               {"id": "short", "text": "Short."}])
    docs = load_documents(path, chunk_size=300)
    chunks = [d for d in docs if d.parent_id == "long"]
    assert [d.id for d in chunks] == [f"long#{n}" for n in range(len(chunks))] and len(chunks) > 5
    assert all(len(d.text) <= 300 and d.intents == ("x",) and d.text.endswith(".") for d in chunks)
    assert " ".join(d.text for d in chunks) == LONG
    assert docs[-1].id == "short" and "parent_id" not in docs[-1].metadata
    assert [d.id for d in load_documents(path, chunk_size=300)] == [d.id for d in docs]  # deterministic
    assert len(load_documents(path, chunk_size=None)) == 2


def test_overlong_sentence_is_cut_at_spaces():
    doc = Document("w", "", "word " * 100)
    chunks = chunk_documents([doc], 60)
    assert all(len(c.text) <= 60 for c in chunks) and " ".join(c.text for c in chunks) == ("word " * 100).strip()


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', r"kb\.jsonl:2: not valid JSON"),
    ('{"id": "a", "text": "ok"}\n\n{"id": "b", "text": "   "}\n', r"kb\.jsonl:3: empty or missing 'text'"),
    ('{"id": "a", "text": "ok"}\n{"id": "a", "text": "again"}\n', r"kb\.jsonl:2: duplicate id 'a' \(first at .*kb\.jsonl:1\)"),
    ('{"id": "a", "text": "ok", "intents": "card_arrival"}\n', r"kb\.jsonl:1: 'intents' must be a list of strings"),
    ('{"text": "no id, no title"}\n', r"kb\.jsonl:1: a document needs an 'id'"),
    ('{"id": "a#1", "text": "ok"}\n', r"must not contain '#'"),
    ('["a list"]\n', r"kb\.jsonl:1: expected a JSON object"),
])
def test_broken_jsonl_lines_are_named_by_file_and_line(tmp_path, content, message):
    path = tmp_path / "kb.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=message):
        load_documents(path)


def test_other_format_errors(tmp_path):
    (tmp_path / "kb.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=r"unknown knowledge base format '\.txt'; use one of \.jsonl, \.csv"):
        load_documents(tmp_path / "kb.txt")
    with pytest.raises(KnowledgeBaseError, match="does not exist"):
        load_documents(tmp_path / "missing.jsonl")
    (tmp_path / "bad.csv").write_text("id,text\na,ok,extra\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=r"bad\.csv:2: 3 cells for 2 columns"):
        load_documents(tmp_path / "bad.csv")
    (tmp_path / "nocol.csv").write_text("id,answer\na,ok\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=r"nocol\.csv:1: the header needs a 'text' column"):
        load_documents(tmp_path / "nocol.csv")
    (tmp_path / "latin.jsonl").write_bytes(b'{"id": "a", "text": "caf\xe9"}\n')
    with pytest.raises(KnowledgeBaseError, match="not UTF-8"):
        load_documents(tmp_path / "latin.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KnowledgeBaseError, match="holds no .md files"):
        load_documents(tmp_path / "empty")
    with pytest.raises(ValueError, match="chunk_size must be"):
        load_documents(KNOWLEDGE_BASE, chunk_size=10)


def test_default_knowledge_base_loads_whole(data_dir):
    docs = load_documents(KNOWLEDGE_BASE)
    assert len(docs) == 98 and all("#" not in d.id for d in docs)  # no default answer needs chunking
    labels = json.loads((data_dir / "banking77" / "categories.json").read_text(encoding="utf-8"))
    covered = {i for d in docs for i in d.intents}
    assert len(labels) == 77 and covered == set(labels)


def test_jsonl_texts_with_unicode_line_separators_stay_one_document(tmp_path):
    # Valid JSON may carry U+2028 and U+0085 raw inside a string (json.dumps(ensure_ascii=False) does).
    path = tmp_path / "kb.jsonl"
    records = [{"id": "a", "title": "Fees\u2028and limits", "text": "No fee\x85 up to 200 a month."},
               {"id": "b", "title": "Cards", "text": "Cards arrive in 3 days."}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    first, second = load_documents(path)
    assert (first.title, first.text, second.source) == ("Fees\u2028and limits", "No fee\x85 up to 200 a month.", f"{path}:2")

"""The LangChain adapter: a real BaseRetriever over our index, langchain imported only on use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_importing_retrieval_does_not_import_langchain_or_faiss():
    code = ("import sys, retrieval, retrieval.documents, retrieval.index, retrieval.langchain; "
            "print(sorted(m for m in ('langchain_core', 'faiss', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_retriever_returns_langchain_documents_with_scores(small_index):
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever

    from retrieval.langchain import IndexRetriever

    retriever = IndexRetriever(index=small_index, k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("what exchange rate will I get")
    assert len(docs) == 2 and all(isinstance(d, LCDocument) for d in docs)
    top = docs[0]
    assert top.page_content.startswith("We use the interbank rate")
    assert top.metadata["id"] == "exchange-rate" and top.metadata["title"] == "What exchange rate do you use?"
    assert top.metadata["intents"] == ["exchange_rate"] and top.metadata["matched_intent"] is False
    assert top.metadata["score"] == pytest.approx(top.metadata["vector_score"])
    assert top.metadata["score"] > docs[1].metadata["score"]


def test_intent_per_retriever_and_per_call(small_index):
    from retrieval.langchain import IndexRetriever

    retriever = IndexRetriever(index=small_index, k=1, intent="terminate_account")
    assert retriever.invoke("what exchange rate will I get")[0].metadata["id"] == "close-account"
    assert retriever.invoke("what exchange rate will I get", intent="pin_blocked")[0].metadata["id"] == "pin-blocked"
    assert len(retriever.batch(["card not here", "pin blocked"])) == 2
    with pytest.raises(TypeError, match="unexpected arguments \\['n'\\]"):
        retriever.invoke("x", n=3)

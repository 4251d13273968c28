"""LangChain adapter: our FAISS :class:`~retrieval.index.Index` as a LangChain retriever.

LangChain's own FAISS vector store saves its docstore with pickle (``load_local`` unpickles), so
qagent keeps its own index files and only speaks LangChain's ``BaseRetriever`` interface::

    from retrieval.langchain import IndexRetriever

    retriever = IndexRetriever(index=Index.load("kb-index", encoder=encoder), k=3)
    docs = retriever.invoke("my card has not arrived", intent="card_arrival")

``langchain_core`` is imported on first use of this module's names, never by ``import retrieval``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from retrieval.index import DEFAULT_INTENT_BOOST, Hit

if TYPE_CHECKING:
    from langchain_core.documents import Document as LCDocument

__all__ = ["IndexRetriever", "to_langchain_document"]


def to_langchain_document(hit: Hit) -> LCDocument:
    """A LangChain ``Document``: the answer text as ``page_content``, ids and scores as metadata."""
    from langchain_core.documents import Document as LCDocument

    doc = hit.doc
    metadata = {
        "id": doc.id, "parent_id": doc.parent_id, "title": doc.title, "intents": list(doc.intents),
        "followups": list(doc.followups), "source": doc.source, "score": hit.score,
        "vector_score": hit.vector_score, "matched_intent": hit.matched_intent,
    }
    return LCDocument(page_content=doc.text, metadata=metadata, id=doc.id)


@functools.cache
def _retriever_class() -> type:
    """Define the BaseRetriever subclass on first use (it needs langchain_core at class time)."""
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever

    class IndexRetriever(BaseRetriever):
        """Retrieve knowledge-base answers from a qagent ``Index`` (loaded with an encoder).

        Attributes:
            index: The ``retrieval.index.Index`` to search.
            k: Documents per query.
            intent: Intent to boost for every query (e.g. from the NLU); ``invoke(q, intent=…)``
                overrides it for one call.
            intent_boost: Added to the cosine score of documents tagged with the intent.
        """

        index: Any
        k: int = 3
        intent: str | None = None
        intent_boost: float = DEFAULT_INTENT_BOOST

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
        ) -> list[LCDocument]:
            unknown = set(kwargs) - {"intent", "k"}
            if unknown:
                raise TypeError(f"IndexRetriever got unexpected arguments {sorted(unknown)}; it takes intent and k")
            hits = self.index.search(query, k=kwargs.get("k", self.k), intent=kwargs.get("intent", self.intent),
                                     intent_boost=self.intent_boost)
            return [to_langchain_document(hit) for hit in hits]

    IndexRetriever.__module__ = __name__
    return IndexRetriever


def __getattr__(name: str) -> Any:
    if name == "IndexRetriever":
        return _retriever_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

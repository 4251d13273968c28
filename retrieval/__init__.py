"""Knowledge base and vector search: ``documents`` (load, chunk), ``index`` (FAISS), ``langchain`` (adapter).

Import the submodules; this package imports nothing heavy so ``import retrieval`` stays instant.
"""

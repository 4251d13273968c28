"""Data: loaders that turn data sets and user files into plain records, and what is done to records
before training (BIO tagging of entity spans, mention-replacement augmentation, out-of-scope
examples, NLU++ fold setups)."""

"""Training: the trainer loop and its resumable state, the recipe every task shares, and the task
recipes on top of it (classifiers, entity taggers, the joint sentiment + tagger adapter)."""

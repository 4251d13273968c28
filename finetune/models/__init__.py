"""Models: the encoder, the heads, checkpoints on disk, and the loaded models built from them
(text classifiers, entity taggers, their ensembles), with one loader for all of them and the
planner that decides which models share an encoder pass."""

"""Run registry: every ``agent finetune …`` and ``agent eval …`` leaves a record.

- :mod:`~finetune.runs.registry`: the records (``$QAGENT_HOME/runs/<run-id>/record.json``).
- :mod:`~finetune.runs.lock`: one process per run at a time (a kernel file lock).
- :mod:`~finetune.runs.recorder`: a run in progress: status, progress, log, IBM job ids.
- :mod:`~finetune.runs.command`: the decorator that makes a typer command a recorded run.
- :mod:`~finetune.runs.launch`: starting runs in the background, resuming and cancelling them.
- :mod:`~finetune.runs.compare`: runs side by side; :mod:`~finetune.runs.render`: runs as text.
- :mod:`~finetune.runs.cli`: ``agent jobs list|show|logs|cancel|resume|compare``.
"""

"""``python -m agent``: the ``agent`` command without its console script (how runs are re-run)."""

from agent.cli import main

main()

"""``python -m agent.monitor …``: the same commands as ``agent monitor …``."""

from agent.monitor.cli import app

if __name__ == "__main__":  # pragma: no cover - exercised by the interrupt test in a subprocess
    app(prog_name="python -m agent.monitor")

"""The Gradio web UI (``agent serve``): Chat, Monitor and Models tabs over the assistant.

Gradio would otherwise phone home (version check, usage analytics) when an app is built; the
UI must work offline and tell no one it runs, so that is switched off before gradio is imported.
A value the user set explicitly is left alone.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

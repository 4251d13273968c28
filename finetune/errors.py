"""Errors as a person reads them: a bad named setting, and the one line any error is shown as.

Commands pass their options to library functions under the same names (``train_folds``,
``share_mentions``…), so a :class:`SettingError` can be shown to a user as the option it came from
("Invalid value for --share-mentions: …") without the library knowing about command lines.
"""

from __future__ import annotations


class SettingError(ValueError):
    """``setting`` (a parameter name such as ``share_mentions``) has a value that cannot work.

    Attributes:
        setting: The parameter's name; commands spell it as the option ``--share-mentions``.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting

    @property
    def option(self) -> str:
        """The command-line spelling of the setting."""
        return "--" + self.setting.replace("_", "-")


class RunCancelled(BaseException):
    """The run got SIGTERM (``agent jobs cancel``). A BaseException, like KeyboardInterrupt, so
    that library code catching ``Exception`` does not swallow it. Its message, once the run has
    recorded itself cancelled, is the line the user sees (where the checkpoint is)."""


KNOWN_PACKAGES = ("finetune", "agent", "retrieval", "eval", "ui")


def describe_error(exc: BaseException) -> str:
    """The one line a user sees for ``exc`` (on a command line or a web page).

    qagent's own errors and the ordinary input errors (bad values, missing or unreadable files)
    are their message; anything else is named as unexpected, with how to get the traceback.
    """
    from typer import BadParameter  # typer carries its own click

    if isinstance(exc, BadParameter):  # a bad option found after parsing: "Invalid value for --x: why"
        return exc.format_message()
    if isinstance(exc, SettingError):  # a library function's setting, named as the option it came from
        return BadParameter(str(exc), param_hint=exc.option).format_message()
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    known = getattr(exc, "__module__", "").split(".")[0] in KNOWN_PACKAGES
    if known or isinstance(exc, (ValueError, FileNotFoundError, PermissionError, MemoryError)):
        return message or type(exc).__name__
    return f"unexpected {type(exc).__name__}: {message} (set QAGENT_DEBUG=1 for the traceback)"

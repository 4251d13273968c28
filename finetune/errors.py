"""The error a library function raises when one of its named settings is wrong.

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

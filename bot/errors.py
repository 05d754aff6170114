"""The one exception type whose text may reach a chat user."""

from __future__ import annotations


class UserError(Exception):
    """One friendly sentence that says what was wrong and how to write it."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        self.message = message
        self.usage = usage
        super().__init__(self.sentence)

    @property
    def sentence(self) -> str:
        if self.usage:
            return f"{self.message.rstrip('.')}: write `{self.usage}`."
        return self.message


class NotFound(UserError):
    """The named thing (a pilot) does not exist; REST maps it to 404."""

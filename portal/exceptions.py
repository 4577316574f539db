"""The one exception for broken business rules, with a message for people."""


class ApplicationError(Exception):
    """A business rule was broken. The message is written for the person who acted."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

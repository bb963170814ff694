"""One root exception for the app, with a few typed children."""

from __future__ import annotations


class AutoresponderError(Exception):
    """Root of every error the app raises on purpose."""


class EngineUnavailable(AutoresponderError):
    """The Rasa engine did not answer; check that it is running and its token matches."""


class TemplateError(AutoresponderError):
    """A response template is missing, malformed or lacks a variable it uses."""


class BadInput(AutoresponderError):
    """A customer's input was rejected; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

"""The one exception type for mistakes in what the user asked for.

``lamo`` prints a :class:`UserError` as one line (``lamo COMMAND: error: …``) and exits with status 2;
any other exception is a bug in LaMo or in a library it calls, and shows its traceback. The two
subclasses keep the built-in type a caller of the Python API would catch.
"""
from __future__ import annotations

__all__ = ["UserError", "InputError", "MissingInputError"]


class UserError(Exception):
    """Bad input: a flag, a file or a folder the user named. The message says what is wrong and what to do."""


class InputError(UserError, ValueError):
    """A value the user gave (a flag, a config entry, a file's contents) is not usable."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""

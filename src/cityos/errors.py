"""The one small error hierarchy of cityos.

Every error a user can cause is a :class:`CityosError`. Its message is one line that says what is
wrong and how to fix it; the command line prints it without a traceback and exits with status 2,
the web API turns it into one JSON error shape. Each class also subclasses the closest built-in
exception, so ``except ValueError`` or ``except FileNotFoundError`` keep working for callers who
do not know cityos.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "CityosError",
    "CityosWarning",
    "ConfigError",
    "InputError",
    "InputFileNotFoundError",
    "Interrupted",
    "OutputError",
    "OutputExistsError",
]


class CityosError(Exception):
    """Base class of every error a user can cause; the message is one line with the fix."""

    exit_code = 2


class InputError(CityosError, ValueError):
    """An input file or argument is unusable (wrong format, missing columns, bad coordinates)."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """An input path does not exist or is empty."""


class OutputExistsError(CityosError, FileExistsError):
    """The output path exists and overwriting was not asked for."""


class OutputError(CityosError, ValueError):
    """The output path cannot be used: it is an input, the current folder, a folder or file that
    cityos did not write, has the wrong suffix, or its parent is not writable."""


class BundleError(CityosError, ValueError):
    """A city bundle is missing, from another schema version, or a layer breaks its schema."""


class ConfigError(CityosError, ValueError):
    """A configuration or rules file (TOML) is invalid."""


class NotFoundError(CityosError, LookupError):
    """A requested resource (a ticket, a service) does not exist: HTTP 404."""


class ForbiddenError(CityosError, PermissionError):
    """A write without a valid key, or with a key whose role may not do it: HTTP 403."""


class ConflictError(CityosError):
    """A workflow action not allowed from the ticket's current state: HTTP 409, with the
    actions that are allowed."""

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class CityosWarning(UserWarning):
    """Legal but suspicious input: empty layers, facilities outside the city, geographic CRS."""

"""Errors redline raises on purpose.

Each message says what was given, what is valid and how to fix it, so the
command line can print it as one line without a traceback.
"""


class RedlineError(Exception):
    """Base class of redline's own errors."""


class UsageError(RedlineError, ValueError):
    """Bad input from the user: an option, an argument or an environment value."""


class LateConfigurationError(RedlineError, RuntimeError):
    """configure() ran after the runtime had initialised; some settings did not take effect."""

    def __init__(self, message, failed=()):
        super().__init__(message)
        self.failed = tuple(failed)

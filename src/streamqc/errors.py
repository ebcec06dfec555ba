"""Errors a user can act on: each carries a one-line reason, never a traceback."""


class StreamQCError(Exception):
    """Base class: `str(err)` is a one-line reason fit for stderr."""


class InputError(StreamQCError):
    """The input cannot be opened or read (missing, unreachable, not media, no usable track)."""


class ConfigError(StreamQCError):
    """A configuration key or value is wrong; the message names the key."""

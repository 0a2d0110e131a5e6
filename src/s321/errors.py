"""The exceptions s321 raises, under one root.

::

    S321Error
    ├── ConfigError             a setting or file given to s321 is unusable
    ├── StackError              the local Kafka / Redis stack cannot be installed or started
    │   └── MissingToolError    a required program (java, mvn, redis-server) is not installed
    └── RecordError             one input record cannot be processed (goes to the dead letters)
        ├── DecodeError         bytes that are not a valid s321 record (s321.serialization)
        └── EncodeError         a domain object the schema cannot hold (s321.serialization)

Each error says what went wrong with which record or file, and carries ``retriable`` as data:
``True`` means trying the same thing again later may succeed.
"""

from __future__ import annotations

__all__ = ["ConfigError", "MissingToolError", "RecordError", "S321Error", "StackError"]


class S321Error(Exception):
    """Root of every error s321 raises on purpose."""

    retriable: bool = False


class ConfigError(S321Error):
    """A setting, rule set or reference file is unusable; the message names which and why."""


class StackError(S321Error):
    """The local stack could not be installed, started or stopped."""

    retriable = True


class MissingToolError(StackError):
    """A program the stack needs is not on PATH; the message says how to install it."""

    retriable = False

    def __init__(self, tool: str, install_hint: str) -> None:
        super().__init__(f"{tool} is not installed or not on PATH. {install_hint}")
        self.tool = tool


class RecordError(S321Error):
    """One record could not be decoded or validated.

    ``raw`` is the record's original bytes, so the pipeline can send it, unchanged, to the
    dead-letter topic with ``reason`` in its headers.
    """

    def __init__(self, reason: str, raw: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw

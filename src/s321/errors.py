"""The exceptions s321 raises, under one root.

::

    S321Error
    ├── ConfigError             a setting or file given to s321 is unusable
    ├── StackError              the local Kafka / Redis stack cannot be installed or started
    │   └── MissingToolError    a required program (java, mvn, redis-server) is not installed
    └── RecordError             one input record cannot be processed (goes to the dead letters)
        ├── DecodeError         bytes that are not a valid s321 record (s321.serialization)
        ├── EncodeError         a domain object the schema cannot hold (s321.serialization)
        └── ValidationError     a record that decodes but breaks a bound (s321.validation)

Each error says what went wrong with which record or file, and carries ``retriable`` as data:
``True`` means trying the same thing again later may succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s321.validation import Violation

__all__ = [
    "ConfigError",
    "MissingToolError",
    "RecordError",
    "S321Error",
    "StackError",
    "ValidationError",
]


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


class ValidationError(RecordError):
    """A decoded input record that breaks one or more bounds of :mod:`s321.validation`.

    ``violations`` are the bounds broken, each naming a field and a bound, never a value;
    ``reason`` lists them (the first ten)."""

    def __init__(self, violations: Sequence[Violation], raw: bytes | None = None) -> None:
        shown = "; ".join(str(v) for v in violations[:10])
        more = f"; and {len(violations) - 10} more" if len(violations) > 10 else ""
        super().__init__(f"invalid record: {shown}{more}", raw)
        self.violations = tuple(violations)

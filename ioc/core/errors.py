"""The one error base: an expected failure, told as one line, with the exit status of the CLI."""

from __future__ import annotations


class IocError(Exception):
    """An expected failure (bad input, a service away, a missing file): one line, no traceback.

    Every error the project raises on purpose derives from this; `ioc` prints `ioc: error: <line>`
    and exits with `status`. Anything else reaching the CLI is a bug and keeps its traceback.
    """

    status: int = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        # One line: a multi-line message would break the log and the terminal's one-line promise.
        super().__init__(" ".join(str(message).split("\n")).strip())
        if status is not None:
            self.status = status


class NoDatabaseError(IocError):
    """Neither IOC_DATABASE_URL nor a running local service says where the database is."""

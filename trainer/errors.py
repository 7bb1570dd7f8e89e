"""The trainer's errors that a user must act on, free of heavy imports so the CLI can catch
them before it knows which command will run."""

from __future__ import annotations

from pathlib import Path


class RoutingDataError(ValueError):
    """The data cannot be used at all; the message says where (file, 1-based line) and why.

    ``path``, ``line`` and ``fix`` are kept for callers that want them apart.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem, self.path, self.line, self.fix = problem, path, line, fix
        where = "" if path is None else f"{path}{'' if line is None else f', line {line}'}: "
        super().__init__(f"{where}{problem}{'' if fix is None else f'; to fix: {fix}'}")

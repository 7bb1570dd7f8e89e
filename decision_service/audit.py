"""The admin audit log: who did what, when, from which version to which, and why.

Each entry is appended to a JSON-lines file (when configured) and emitted as one
structured log line, so it reaches the log pipeline even without a file.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("decision_service.audit")


@dataclass(frozen=True)
class AuditEntry:
    when: str
    who: str
    action: str
    from_: str
    to: str
    why: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["from"] = data.pop("from_")
        return data


class AuditLog:
    def __init__(self, path: Path | None = None, keep: int = 1000) -> None:
        self.path = path
        self._recent: deque[AuditEntry] = deque(maxlen=keep)
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        *,
        who: str,
        action: str,
        from_: str | None,
        to: str | None,
        why: str,
        ok: bool = True,
        detail: str = "",
    ) -> AuditEntry:
        entry = AuditEntry(
            when=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            who=who,
            action=action,
            from_=from_ or "",
            to=to or "",
            why=why,
            ok=ok,
            detail=detail,
        )
        line = json.dumps(entry.as_dict(), sort_keys=True)
        with self._lock:
            self._recent.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
        log.info("audit %s", line)
        return entry

    def recent(self) -> list[AuditEntry]:
        with self._lock:
            return list(self._recent)

"""`joblet audit`: read the audit log and its rotated files, filter, print.

Filtering and formatting are pure functions over `AuditRecord`s; only
`read_records` touches files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass
from datetime import datetime
from pathlib import Path

from joblet.cli.terminal import escape_field
from joblet.security.audit import REFUSAL_CODES, AuditRecord, from_json_line, to_json_line

# --outcome values beyond the status code names themselves.
OUTCOME_GROUPS = {"DENIED": REFUSAL_CODES}


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None  # aware, UTC
    cn: str | None = None
    rpc: str | None = None  # a full method name or its last part (RunJob)
    outcomes: frozenset[str] = frozenset()  # code names; empty = all

    def matches(self, record: AuditRecord) -> bool:
        if self.cn is not None and record.cn != self.cn:
            return False
        if self.rpc is not None and self.rpc not in (record.rpc, record.rpc.rsplit("/", 1)[-1]):
            return False
        if self.outcomes and record.outcome not in self.outcomes:
            return False
        return self.since is None or _after(record.time, self.since)


def parse_outcomes(values: Iterable[str]) -> frozenset[str]:
    """OK, DENIED (PERMISSION_DENIED or UNAUTHENTICATED) or any code name,
    case-insensitive, comma-separated or repeated; ValueError for others."""
    import grpc  # the code names; only the command pays for the import

    known = {code.name for code in grpc.StatusCode}
    result: set[str] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            if name in OUTCOME_GROUPS:
                result |= OUTCOME_GROUPS[name]
            elif name in known:
                result.add(name)
            else:
                raise ValueError(f"outcome {part!r} is not OK, DENIED or a gRPC status code name")
    return frozenset(result)


def _after(stamp: str, since: datetime) -> bool:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.tzinfo is not None and moment >= since


def parse_lines(lines: Iterable[str]) -> tuple[list[AuditRecord], int]:
    """The records of `lines` and how many lines were not records."""
    records: list[AuditRecord] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            records.append(from_json_line(line))
        except ValueError:
            bad += 1
    return records, bad


def read_records(paths: Iterable[Path]) -> tuple[list[AuditRecord], int]:
    """Every record of the files that exist among `paths` (oldest first), and
    the count of lines that were not records."""
    records: list[AuditRecord] = []
    bad = 0
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        found, broken = parse_lines(text.splitlines())
        records += found
        bad += broken
    return records, bad


COLUMNS = ("TIME", "CN", "ROLE", "RPC", "OBJECT", "OUTCOME", "PEER", "MESSAGE")


def render_table(records: list[AuditRecord]) -> Iterator[str]:
    """Aligned lines, one per record, under a header; the RPC by its short name."""
    rows = [COLUMNS] + [_row(r) for r in map(_escaped, records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        yield "  ".join([*cells, row[-1]]).rstrip()


def _row(r: AuditRecord) -> tuple[str, ...]:
    short_rpc = r.rpc.rsplit("/", 1)[-1]
    return (r.time, r.cn or "-", r.role or "-", short_rpc, r.object or "-", r.outcome,
            r.peer or "-", r.message)  # fmt: skip


def _escaped(record: AuditRecord) -> AuditRecord:
    # Names and messages come from certificates and callers: never raw to a terminal.
    return AuditRecord(*(escape_field(value) for value in astuple(record)))


def render_json(records: list[AuditRecord]) -> Iterator[str]:
    return (to_json_line(record) for record in records)

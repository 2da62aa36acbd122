"""Stewardship commands: `lake archive ncei`, `lake backup`, `lake verify`, `lake restore`,
`lake retention apply` and `lake plans`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from coastlake.commands.common import console, fail, open_registry, out

if TYPE_CHECKING:
    from lake.storage import Storage

Root = Annotated[str | None, typer.Option("--root", help="Lake root (default LAKE_ROOT).")]

archive_app = typer.Typer(help="Packages for the national archive (NCEI).", no_args_is_help=True)
retention_app = typer.Typer(help="Each stream's retention rules.", no_args_is_help=True)


def _storage(root: str | None) -> Storage:
    from lake.settings import get_settings
    from lake.storage import Storage

    return Storage.from_settings(get_settings(), root=root)


@archive_app.command("ncei")
def archive_ncei(
    month: Annotated[
        str | None,
        typer.Option(
            "--month",
            help="The month to package, YYYY-MM (default: every ended month never sent, "
            "and the last two rechecked for changes).",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--out", help="Where packages go (default <lake>/archive/ncei/packages)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (default LAKE_DASK_SCHEDULER); one task per stream-month."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Without a scheduler: a local cluster of this many processes (default: "
            "packages made in this process)."
        ),
    ] = None,
    root: Root = None,
) -> None:
    """One NetCDF per station and month of each stream with archive.ncei, a manifest with
    checksums, and a submission record; a month already sent unchanged is not sent again."""
    from lake.errors import LakeError
    from lake.reader import Lake
    from steward.ncei import archive_months, months_due

    registry = open_registry()
    lk = Lake(_storage(root))
    try:
        months = [month] if month else months_due(lk, registry)
        outcomes = archive_months(lk, registry, months, to, scheduler=scheduler, workers=workers)
    except LakeError as exc:
        raise fail(exc) from None
    table = Table("stream", "month", "action", "version", "files", "where")
    for o in outcomes:
        sub = o.submission
        table.add_row(
            o.stream_id,
            o.month,
            o.action,
            f"v{sub.version}" if sub else "-",
            str(len(sub.files)) if sub else "0",
            sub.destination if sub else "",
        )
    out.print(table)
    if not outcomes:
        console.print("no month to archive: no stream has archive.ncei, or no ended month")


@archive_app.command("record")
def archive_record(
    stream: Annotated[str, typer.Argument(help="Stream id.")],
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM.")],
    status: Annotated[str, typer.Option("--status", help="received, accepted or rejected.")],
    accession: Annotated[
        str | None, typer.Option("--accession", help="NCEI's accession number.")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Version (default: the newest).")] = None,
    root: Root = None,
) -> None:
    """Record NCEI's answer on a month's submission, with its accession number."""
    from lake.errors import LakeError
    from steward.ncei import record_status

    try:
        record = record_status(_storage(root), stream, month, status, accession, version)
    except LakeError as exc:
        raise fail(exc) from None
    console.print(
        f"{stream} {month} v{record.version}: {record.status}"
        + (f", accession {record.accession}" if record.accession else "")
    )


@retention_app.command("apply")
def retention_apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")
    ] = False,
    root: Root = None,
) -> None:
    """Enforce each stream's retention rules: rows past their window, streams whose terms
    forbid copies, raw responses not to be kept, superseded model runs."""
    from lake.errors import LakeError
    from steward.retention import apply_retention

    try:
        run = apply_retention(_storage(root), open_registry(), dry_run=dry_run)
    except (LakeError, OSError) as exc:
        raise fail(exc) from None
    table = Table("stream", "what", "count", "why", title="would delete" if dry_run else "deleted")
    for a in run.actions:
        table.add_row(a.stream_id, a.what, f"{a.count:,}", a.detail)
    out.print(table)
    if not run.actions:
        console.print("every stream is within its retention rules")


def backup(
    to: Annotated[str, typer.Option("--to", help="A folder or s3://bucket/prefix.")],
    root: Root = None,
) -> None:
    """Copy what changed in the lake to a folder or another bucket, checked by checksum."""
    from lake.errors import LakeError
    from steward.backup import backup as run_backup

    try:
        result = run_backup(_storage(root), to)
    except (LakeError, OSError) as exc:
        raise fail(exc) from None
    console.print(
        f"backup {result.target}: {len(result.copied)} objects copied "
        f"({result.bytes_copied:,} bytes), {result.unchanged} unchanged, "
        f"{len(result.deleted)} deleted (gone from the lake)"
    )


def verify(
    against: Annotated[
        str | None,
        typer.Option(
            "--against", help="A backup (default: the checksums of the last backup, if any)."
        ),
    ] = None,
    root: Root = None,
) -> None:
    """Name every object of the lake that is missing or corrupted; exit 1 if any is.

    Data files are checked against the Delta logs, raw responses against their content
    hash, and every object against a backup's checksums."""
    from lake.errors import LakeError
    from steward.backup import verify as run_verify

    try:
        report = run_verify(_storage(root), against)
    except (LakeError, OSError) as exc:
        raise fail(exc) from None
    for label, keys in (
        ("missing", report.missing),
        ("corrupted", report.corrupted),
        ("missing in the backup", report.backup_missing),
        ("corrupted in the backup", report.backup_corrupted),
        ("changed since the backup (may change)", report.changed),
    ):
        for key in keys:
            out.print(f"{label}: {key}")
    console.print(f"checked {report.checked} objects against {report.against}")
    if not report.ok:
        raise typer.Exit(1)


def restore(
    source: Annotated[str, typer.Option("--from", help="The backup: a folder or s3:// URL.")],
    root: Root = None,
) -> None:
    """Copy back from a backup every object the lake lacks or holds with other bytes."""
    from lake.errors import LakeError
    from steward.backup import restore as run_restore

    try:
        result = run_restore(_storage(root), source)
    except (LakeError, OSError, RuntimeError) as exc:
        raise fail(exc) from None
    console.print(
        f"restored {len(result.copied)} objects ({result.bytes_copied:,} bytes) into "
        f"{result.target}; {result.unchanged} were already whole"
    )


def plans(
    to: Annotated[str, typer.Option("--out", help="Folder for <stream>.md and .html.")] = "plans",
    every: Annotated[
        bool, typer.Option("--all", help="Every stream, not only those that need a plan.")
    ] = False,
    root: Root = None,
) -> None:
    """Write the Data Stream Plan of each funded and regional stream (Markdown and HTML),
    generated from the registry and the lake; the server answers them at /plans/."""
    from datetime import UTC, datetime
    from pathlib import Path

    from lake.reader import Lake
    from steward.stream_plans import stream_plan, streams_needing_plans, to_html, to_markdown

    registry = open_registry()
    lk = Lake(_storage(root))
    folder = Path(to)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(tzinfo=None)
    chosen = registry.streams if every else streams_needing_plans(registry)
    for stream in chosen:
        doc = stream_plan(lk, registry, stream, now)
        (folder / f"{stream.id}.md").write_text(to_markdown(doc), encoding="utf-8")
        (folder / f"{stream.id}.html").write_text(to_html(doc), encoding="utf-8")
    console.print(f"{len(chosen)} Data Stream Plans written to {folder}")


def status_section(lk: object, registry: object) -> None:
    """`lake status` section: per archived stream the months sent to NCEI, the last backup
    and the last retention run."""
    from lake.reader import Lake
    from lake.registry import Registry
    from steward.backup import last_backup_manifest
    from steward.ncei import SUBMISSIONS, archived_streams, submissions
    from steward.retention import last_runs

    if not isinstance(lk, Lake) or not isinstance(registry, Registry):
        return
    storage = lk.storage
    table = Table("stewardship", "state", title="archive, backups, retention")
    for stream in archived_streams(registry):
        months = [
            u.rstrip("/").rsplit("/", 1)[-1]
            for u in storage.list(storage.url(*SUBMISSIONS, stream.id))
        ]
        latest = [submissions(storage, stream.id, m)[-1] for m in months]
        sent = ", ".join(f"{s.month} v{s.version}" for s in latest[-6:]) or "none yet"
        table.add_row(f"NCEI: {stream.id}", f"{len(latest)} months sent; last: {sent}")
    found = last_backup_manifest(storage)
    table.add_row(
        "last backup",
        f"{found[0]}: {len(found[1])} objects" if found else "never (lake backup --to URL)",
    )
    runs = last_runs(storage, limit=1)
    table.add_row(
        "last retention run",
        f"{runs[0]['at']}: {len(runs[0]['actions'])} actions" if runs else "nothing deleted yet",
    )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(archive_app, name="archive")
    app.add_typer(retention_app, name="retention")
    app.command()(backup)
    app.command()(verify)
    app.command()(restore)
    app.command()(plans)

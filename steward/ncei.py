"""Monthly NCEI archive packages: one NetCDF per station and month for every stream marked
`archive: {ncei: true}`, a manifest with sizes and checksums, and a submission record per
accession kept in the lake.

An accession is one stream's month. Each station's rows are fingerprinted (a hash of every
stored value, flag and provenance, not of the file, whose creation date changes); a month
whose fingerprints match its last submission is not sent again, and one whose rows changed
since (late data, QC re-run, a provider's correction) is sent whole as the next version.
Records live under `<lake>/archive/ncei/submissions/<stream>/<YYYY-MM>/v<N>.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from lake.cluster import describe, job_client, run_tasks
from lake.errors import NotFound, RequestError
from lake.netcdf import dataset_to_netcdf_bytes
from lake.reader import Lake
from lake.registry import Kind, Registry, Stream
from lake.station_files import station_dataset, station_rows_query
from lake.storage import Storage

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

SUBMISSIONS = ("archive", "ncei", "submissions")
PACKAGES = ("archive", "ncei", "packages")


@dataclass(frozen=True)
class PackagedFile:
    """One file of an accession as it was sent."""

    name: str
    station_id: str
    bytes: int
    sha256: str
    rows: int
    fingerprint: str


@dataclass
class Submission:
    """What was sent for a stream's month, when, where, and its state."""

    stream_id: str
    month: str
    version: int
    status: str
    sent_at: str
    destination: str
    files: list[PackagedFile] = field(default_factory=list)
    accession: str | None = None
    replaces: int | None = None
    #: The archive run that sent it (tells a retried task its own earlier attempt).
    run: str | None = None

    def fingerprints(self) -> dict[str, str]:
        return {f.station_id: f.fingerprint for f in self.files}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Submission:
        files = [PackagedFile(**f) for f in data.pop("files", [])]
        return cls(**data, files=files)


@dataclass(frozen=True)
class MonthOutcome:
    """What one run did for a stream's month: sent (new or changed) or skipped, and why."""

    stream_id: str
    month: str
    action: str  # "sent" | "unchanged" | "empty"
    submission: Submission | None = None


def month_window(month: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of a 'YYYY-MM' month, naive UTC; refuses a month that has not ended."""
    try:
        start = datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise RequestError(f"--month {month!r} is not YYYY-MM") from None
    end = (pd.Timestamp(start) + pd.offsets.MonthBegin(1)).to_pydatetime()
    current = (now or datetime.now(UTC)).replace(tzinfo=None)
    if end > current:
        raise RequestError(f"month {month} has not ended yet; archive it once it is over")
    return start, end


def archived_streams(registry: Registry) -> list[Stream]:
    """The station streams marked for NCEI (grids and layers go by other routes)."""
    return [s for s in registry.streams if s.archive.ncei and s.kind == Kind.timeseries]


def submissions(storage: Storage, stream_id: str, month: str) -> list[Submission]:
    """Every submission of a stream's month, oldest first."""
    found = [
        Submission.from_json(json.loads(storage.read_bytes(url)))
        for url in storage.list(storage.url(*SUBMISSIONS, stream_id, month))
        if url.endswith(".json")
    ]
    return sorted(found, key=lambda s: s.version)


def archive_month(
    lk: Lake,
    registry: Registry,
    month: str,
    out: str | None = None,
    *,
    now: datetime | None = None,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> list[MonthOutcome]:
    """Package `month` of every archived stream into `out` (default: the lake's
    archive/ncei/packages) and record each accession sent; unchanged months are skipped.
    On a Dask cluster as `archive_months` says."""
    return archive_months(
        lk, registry, [month], out, now=now, client=client, scheduler=scheduler, workers=workers
    )


def archive_months(
    lk: Lake,
    registry: Registry,
    months: list[str],
    out: str | None = None,
    *,
    now: datetime | None = None,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> list[MonthOutcome]:
    """`archive_month` for several months: one task per stream-month on a Dask cluster.

    The cluster is `client`, else the scheduler at `scheduler` (default LAKE_DASK_SCHEDULER),
    else a local cluster of `workers` processes when given. With none of them the packages
    are made in this process: a region's month is a few streams of a few MB each, and a
    local cluster would cost more to start than it saves. Every task writes its files
    under a folder named by its stream, month and version, and a task run again (its worker
    lost) finds its own submission record and reports it, so nothing is sent twice.
    """
    windows = {m: month_window(m, now) for m in months}  # bad months refused before any work
    target = out or lk.storage.url(*PACKAGES)
    items = [(stream, m) for m in months for stream in archived_streams(registry)]
    if not items:
        return []
    run = uuid.uuid4().hex
    with job_client(
        client,
        scheduler,
        workers,
        default_scheduler=lk.storage.settings.dask_scheduler,
        in_process=True,
    ) as cluster:
        log.info("NCEI archive: sending %d stream-months to %s", len(items), describe(cluster))
        return run_tasks(
            cluster,
            archive_stream_month,
            items,
            lk.storage,
            target,
            windows,
            run,
            what="NCEI archive: stream-months packaged",
        )


def archive_stream_month(
    item: tuple[Stream, str],
    storage: Storage,
    target_root: str,
    windows: dict[str, tuple[datetime, datetime]],
    run: str,
) -> MonthOutcome:
    """Package one stream's month (a task on a worker): reads the lake at `storage` and
    writes under `target_root`; `run` names the archive run (see `archive_months`)."""
    stream, month = item
    start, end = windows[month]
    target = Storage.from_settings(storage.settings, root=target_root)
    lk = Lake(storage)
    try:
        return _archive_stream_month(lk, target, stream, month, start, end, run)
    finally:
        lk.close()


def months_due(
    lk: Lake, registry: Registry, now: datetime | None = None, recheck: int = 2
) -> list[str]:
    """Ended months that hold values of an archived stream and were never sent, plus the
    last `recheck` ended months (where late data and QC re-runs land): what a monthly run
    of `lake archive ncei` without --month looks at, so no month is skipped."""
    current = (now or datetime.now(UTC)).replace(tzinfo=None)
    this_month = current.strftime("%Y-%m")
    due: set[str] = set()
    for stream in archived_streams(registry):
        stored = lk.sql(
            "SELECT DISTINCT strftime(time, '%Y-%m') AS month FROM observations_all "
            "WHERE dataset_id = ?",
            [stream.id],
        ).to_pylist()
        months = sorted(r["month"] for r in stored if r["month"] < this_month)
        sent = {
            url.rstrip("/").rsplit("/", 1)[-1]
            for url in lk.storage.list(lk.storage.url(*SUBMISSIONS, stream.id))
        }
        due |= {m for m in months if m not in sent}
        due |= set(months[-recheck:] if recheck else [])
    return sorted(due)


def _archive_stream_month(
    lk: Lake,
    target: Storage,
    stream: Stream,
    month: str,
    start: datetime,
    end: datetime,
    run: str,
) -> MonthOutcome:
    last_moment = end - pd.Timedelta(microseconds=1)
    stations = [
        r["station_id"]
        for r in lk.sql(
            "SELECT DISTINCT station_id FROM observations_all WHERE dataset_id = ? "
            "AND time >= ? AND time < ? ORDER BY station_id",
            [stream.id, start, end],
        ).to_pylist()
    ]
    if not stations:
        log.info("%s %s: no values stored; nothing to archive", stream.id, month)
        return MonthOutcome(stream.id, month, "empty")
    prints = {s: _fingerprint(lk, stream.id, s, start, last_moment) for s in stations}
    earlier = submissions(lk.storage, stream.id, month)
    if earlier and earlier[-1].fingerprints() == {s: p for s, (p, _) in prints.items()}:
        if earlier[-1].run == run:
            # Sent by this very run: the task is a retry after its worker was lost.
            log.info("%s %s: v%d sent by this run already", stream.id, month, earlier[-1].version)
            return MonthOutcome(stream.id, month, "sent", earlier[-1])
        log.info("%s %s: sent as v%d, unchanged since", stream.id, month, earlier[-1].version)
        return MonthOutcome(stream.id, month, "unchanged", earlier[-1])
    version = earlier[-1].version + 1 if earlier else 1
    folder = (stream.id, month, f"v{version}")
    files = []
    for station in stations:
        ds = station_dataset(
            lk, stream.id, station, start, last_moment, stream=stream, include_flagged=True
        )
        code = station.rsplit(":", 1)[-1]
        ds.attrs.update(
            id=f"{stream.id}.{code}.{month}",
            product_version=f"v{version}",
            history=f"{_now()} coastlake: monthly NCEI archive package, version {version}",
        )
        body = dataset_to_netcdf_bytes(ds)
        name = f"{stream.id}_{code}_{month.replace('-', '')}_v{version}.nc"
        target.write_bytes(target.url(*folder, name), body)
        fingerprint, rows = prints[station]
        files.append(
            PackagedFile(
                name, station, len(body), hashlib.sha256(body).hexdigest(), rows, fingerprint
            )
        )
    record = Submission(
        stream_id=stream.id,
        month=month,
        version=version,
        status="sent",
        sent_at=_now(),
        destination=target.url(*folder),
        files=files,
        accession=stream.archive.accession,
        replaces=earlier[-1].version if earlier else None,
        run=run,
    )
    _write_manifest(target, folder, record)
    lk.storage.write_bytes(
        lk.storage.url(*SUBMISSIONS, stream.id, month, f"v{version}.json"),
        json.dumps(asdict(record), indent=1).encode(),
    )
    log.info("%s %s: sent v%d, %d files", stream.id, month, version, len(files))
    return MonthOutcome(stream.id, month, "sent", record)


#: What NCEI may answer about a submission, recorded by `record_status`.
STATUSES = ("sent", "received", "accepted", "rejected")


def record_status(
    storage: Storage,
    stream_id: str,
    month: str,
    status: str,
    accession: str | None = None,
    version: int | None = None,
) -> Submission:
    """Record NCEI's answer (and accession number) on a month's submission (the newest
    version unless `version` is given); raises NotFound/RequestError naming what is wrong."""
    if status not in STATUSES:
        raise RequestError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    found = submissions(storage, stream_id, month)
    chosen = [s for s in found if version is None or s.version == version]
    if not chosen:
        raise NotFound(
            f"no submission of {stream_id} {month}" + (f" v{version}" if version else "")
        )
    record = chosen[-1]
    record.status = status
    if accession:
        record.accession = accession
    storage.write_bytes(
        storage.url(*SUBMISSIONS, stream_id, month, f"v{record.version}.json"),
        json.dumps(asdict(record), indent=1).encode(),
    )
    return record


def _fingerprint(
    lk: Lake, stream_id: str, station_id: str, start: datetime, end: datetime
) -> tuple[str, int]:
    """A hash of everything stored for the station's month (values, flags, provenance)."""
    query, params = station_rows_query(stream_id, station_id, start, end, include_flagged=True)
    rows = lk.sql(query, params).to_pandas()
    rows = rows.sort_values(["time", "variable", "z"], kind="stable")
    digest = hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()
    return digest, len(rows)


def _write_manifest(target: Storage, folder: tuple[str, ...], record: Submission) -> None:
    """manifest.json (the record) and manifest-sha256.txt (BagIt style: checksum, name)."""
    target.write_bytes(
        target.url(*folder, "manifest.json"), json.dumps(asdict(record), indent=1).encode()
    )
    lines = "".join(f"{f.sha256}  {f.name}\n" for f in record.files)
    target.write_bytes(target.url(*folder, "manifest-sha256.txt"), lines.encode())


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

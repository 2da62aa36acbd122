"""Copies of the lake: incremental backup to a folder or another bucket, verification by
checksum, restore.

A backup is a plain copy of every object under the lake root, plus a manifest (relative
path -> size, SHA-256, and the source's stamp: mtime or ETag) at
`<target>/.coastlake-backup/manifest.json`; the manifest is also kept in the lake under
`stewardship/backups/`, so `lake verify` without a target still has checksums to compare
(and without any backup it still checks the Delta logs and the raw zone's content hashes).

- Incremental: an object whose size and stamp match the manifest is not read again; any
  other is read, hashed, copied only if its hash differs, and read back from the target to
  check the copy. Objects gone from the lake (vacuumed files, retention deletions) are
  deleted from the copy, so a backup keeps nothing the lake may not keep.
- Consistent while the lake is written to: data files are copied before the Delta log
  entries and Icechunk refs that name them, so the copy's newest commit never points at a
  file the copy lacks.
- Safe on any S3-compatible store: the copy has one writer (the backup) and its objects
  are never committed to, so it needs none of the conditional writes the primary lake's
  Delta and Icechunk commits rely on.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from lake.delta import open_table
from lake.errors import RequestError
from lake.settings import Settings
from lake.storage import Storage

log = logging.getLogger(__name__)

MANIFEST_DIR = ".coastlake-backup"
MANIFEST = f"{MANIFEST_DIR}/manifest.json"
#: Where the lake keeps the manifest of its last backup to each target.
LAKE_RECORDS = "stewardship/backups"
#: Objects that never change once written: a different hash is corruption, not an update.
IMMUTABLE = re.compile(
    r"(\.parquet$)"
    r"|(/_delta_log/\d+\.json$)"
    r"|(^raw/[^/]+/[0-9a-f]{2}/[0-9a-f]{64}(\.gz)?$)"
    r"|(^grids/.+/(chunks|manifests|snapshots|transactions)/[^/]+$)"
)
#: A raw response: named by the SHA-256 of its bytes as sent (kept gzip-compressed: `.gz`).
RAW_OBJECT = re.compile(r"^raw/[^/]+/[0-9a-f]{2}/[0-9a-f]{64}(\.gz)?$")
#: Copied last: what names the other files (Delta commits, Icechunk branch and tag refs).
_NAMING = re.compile(r"(/_delta_log/)|(/refs/)|(^grids/[^/]+/repo$)")


@dataclass(frozen=True)
class Entry:
    size: int
    sha256: str
    stamp: str


@dataclass
class BackupResult:
    target: str
    copied: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    bytes_copied: int = 0


@dataclass
class VerifyReport:
    """What differs between the lake and the checksums it is checked against."""

    against: str
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    backup_missing: list[str] = field(default_factory=list)
    backup_corrupted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupted or self.backup_missing or self.backup_corrupted)


class Tree:
    """The objects under one root (a folder or s3://bucket/prefix), by relative path."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.fs = storage.fs
        self.base = storage.root.removeprefix("s3://")

    def path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def listing(self) -> dict[str, tuple[int, str]]:
        """relative path -> (size, stamp) of every object, the backup's manifest aside."""
        try:
            found: dict[str, dict[str, Any]] = self.fs.find(self.base, detail=True)
        except FileNotFoundError:
            return {}
        out = {}
        for path, info in found.items():
            key = path[len(self.base) :].lstrip("/")
            if info.get("type") == "directory" or key.startswith((MANIFEST_DIR, LAKE_RECORDS)):
                continue
            if key.endswith(".tmp"):  # a local write in progress (Storage.write_bytes)
                continue
            stamp = str(info.get("ETag") or info.get("mtime") or info.get("LastModified") or "")
            out[key] = (int(info.get("size") or 0), stamp)
        return out

    def read(self, key: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(key)))

    def write(self, key: str, data: bytes) -> None:
        self.storage.write_bytes(self.storage.url(key), data)

    def delete(self, key: str) -> None:
        self.fs.rm(self.path(key))

    def manifest(self) -> dict[str, Entry]:
        try:
            raw = json.loads(self.read(MANIFEST))
        except FileNotFoundError:
            return {}
        return {k: Entry(**v) for k, v in raw["objects"].items()}


def open_tree(url: str, settings: Settings) -> Tree:
    """A backup's objects at `url`; on S3 with the LAKE_BACKUP_* credentials where given,
    so a copy can live on another store than the lake."""
    if url.startswith("s3://") and (settings.backup_endpoint_url or settings.backup_access_key_id):
        settings = settings.model_copy(
            update={
                "aws_endpoint_url": settings.backup_endpoint_url or settings.aws_endpoint_url,
                "aws_access_key_id": settings.backup_access_key_id,
                "aws_secret_access_key": settings.backup_secret_access_key,
                "aws_session_token": None,
                "aws_region": settings.backup_region or settings.aws_region,
            }
        )
    return Tree(Storage.from_settings(settings, root=url))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _copy_order(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: (bool(_NAMING.search(k)), k))


def _manifest_json(target: str, entries: dict[str, Entry]) -> bytes:
    doc = {
        "target": target,
        "written_at": datetime.now(UTC).isoformat(),
        "objects": {k: vars(e) for k, e in sorted(entries.items())},
    }
    return json.dumps(doc, indent=0).encode()


def _record_key(target: str) -> str:
    return f"{LAKE_RECORDS}/{hashlib.sha256(target.encode()).hexdigest()[:16]}.json"


def backup(lake: Storage, to: str, *, on_copy: Callable[[str], None] | None = None) -> BackupResult:
    """Copy what changed in the lake to `to` (a folder or s3:// URL), verified by checksum."""
    source = Tree(lake)
    target = open_tree(to, lake.settings)
    if target.base.rstrip("/") == source.base.rstrip("/"):
        raise RequestError(f"the backup target {to} is the lake itself")
    before = target.manifest()
    listing = source.listing()
    entries: dict[str, Entry] = {}
    result = BackupResult(target=target.storage.root)
    for key in _copy_order(list(listing)):
        size, stamp = listing[key]
        known = before.get(key)
        if known and known.size == size and known.stamp == stamp and stamp:
            entries[key] = known
            result.unchanged += 1
            continue
        try:
            data = source.read(key)
        except FileNotFoundError:
            continue  # deleted since the listing (a vacuum running beside the backup)
        digest = _sha(data)
        entry = Entry(len(data), digest, stamp)
        if known and known.sha256 == digest:
            entries[key] = entry
            result.unchanged += 1
            continue
        target.write(key, data)
        if _sha(target.read(key)) != digest:
            raise RuntimeError(f"the copy of {key} in {to} does not match the lake's bytes")
        entries[key] = entry
        result.copied.append(key)
        result.bytes_copied += len(data)
        if on_copy:
            on_copy(key)
    for key in sorted(set(before) - set(entries)):
        if key not in listing:
            with contextlib.suppress(FileNotFoundError):
                target.delete(key)
            result.deleted.append(key)
    manifest = _manifest_json(target.storage.root, entries)
    target.write(MANIFEST, manifest)
    lake.write_bytes(lake.url(_record_key(target.storage.root)), manifest)
    log.info(
        "backup to %s: %d copied (%d bytes), %d unchanged, %d deleted",
        to,
        len(result.copied),
        result.bytes_copied,
        result.unchanged,
        len(result.deleted),
    )
    return result


def last_backup_manifest(lake: Storage) -> tuple[str, dict[str, Entry]] | None:
    """(target, manifest) of the lake's most recent backup, if it has one."""
    newest: tuple[str, str, dict[str, Entry]] | None = None
    for url in lake.list(lake.url(LAKE_RECORDS)):
        doc = json.loads(lake.read_bytes(url))
        if newest is None or doc["written_at"] > newest[0]:
            objects = {k: Entry(**v) for k, v in doc["objects"].items()}
            newest = (doc["written_at"], doc["target"], objects)
    return (newest[1], newest[2]) if newest else None


def verify(lake: Storage, against: str | None = None) -> VerifyReport:
    """Check the lake's objects; name the missing and the corrupted ones.

    Always, without any backup: every data file the Delta tables' current versions name
    must exist with the size their log records, and every raw response must hash to its
    name (the raw zone is content-addressed). Then against a backup's checksums (the last
    backup's, kept in the lake, when `against` is not given; none yet is fine): missing is
    in the manifest but not in the lake; corrupted is an object that never changes once
    written (data files, log entries, raw responses, grid chunks) whose bytes differ;
    changed is a mutable object (catalog, sidecars, refs) that differs, as it may. With
    `against`, the backup's own copies are checked as well.
    """
    source = Tree(lake)
    listing = source.listing()
    target: Tree | None = None
    manifest: dict[str, Entry] = {}
    where = "the lake's own logs and content hashes"
    if against:
        target = open_tree(against, lake.settings)
        manifest = target.manifest()
        where = target.storage.root
        if not manifest:
            raise RequestError(f"{against} holds no coastlake backup (no {MANIFEST})")
    else:
        found = last_backup_manifest(lake)
        if found is not None:
            where, manifest = found
    report = VerifyReport(against=where)
    _verify_internal(lake, listing, report)
    for key, entry in sorted(manifest.items()):
        report.checked += 1
        if key not in listing:
            _add(report.missing, key)
        elif _sha(source.read(key)) != entry.sha256:
            _add(report.corrupted if IMMUTABLE.search(key) else report.changed, key)
        if target is not None:
            try:
                copy = target.read(key)
            except FileNotFoundError:
                report.backup_missing.append(key)
                continue
            if _sha(copy) != entry.sha256:
                report.backup_corrupted.append(key)
    return report


def _add(found: list[str], key: str) -> None:
    if key not in found:
        found.append(key)


def _verify_internal(
    lake: Storage, listing: dict[str, tuple[int, str]], report: VerifyReport
) -> None:
    """The checks a lake needs no backup for: Delta data files against their log, raw
    responses against their content hash."""
    for table_url in lake.list(lake.url("tables")):
        name = table_url.rstrip("/").rsplit("/", 1)[-1]
        table = open_table(lake.url("tables", name), lake.delta_options())
        if table is None:
            continue
        files = pa.table(table.get_add_actions(flatten=True)).select(["path", "size_bytes"])
        for row in files.to_pylist():
            key = f"tables/{name}/{unquote(str(row['path']))}"
            report.checked += 1
            if key not in listing:
                _add(report.missing, key)
            elif listing[key][0] != int(row["size_bytes"]):
                _add(report.corrupted, key)
    for key in listing:
        if RAW_OBJECT.match(key):
            report.checked += 1
            if _raw_digest(Tree(lake).read(key), key) != key.rsplit("/", 1)[-1].removesuffix(".gz"):
                _add(report.corrupted, key)


def _raw_digest(data: bytes, key: str) -> str | None:
    """The SHA-256 of a raw response as sent (None if a compressed one will not open)."""
    if key.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None
    return _sha(data)


def restore(lake: Storage, source_url: str) -> BackupResult:
    """Copy back every object of the backup at `source_url` that the lake lacks or holds
    with other bytes, each checked against the backup's manifest; objects the lake has
    and the backup does not (written since) are left alone."""
    source = open_tree(source_url, lake.settings)
    manifest = source.manifest()
    if not manifest:
        raise RequestError(f"{source_url} holds no coastlake backup (no {MANIFEST})")
    here = Tree(lake)
    listing = here.listing()
    result = BackupResult(target=lake.root)
    for key in _copy_order(list(manifest)):
        entry = manifest[key]
        if (
            key in listing
            and listing[key][0] == entry.size
            and _sha(here.read(key)) == entry.sha256
        ):
            result.unchanged += 1
            continue
        data = source.read(key)
        if _sha(data) != entry.sha256:
            raise RuntimeError(f"the backup's copy of {key} is corrupted; not restored")
        here.write(key, data)
        result.copied.append(key)
        result.bytes_copied += len(data)
    log.info(
        "restored %d objects (%d bytes) from %s",
        len(result.copied),
        result.bytes_copied,
        source_url,
    )
    return result

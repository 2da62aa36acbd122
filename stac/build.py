"""Build both forms of the catalog: the static STAC catalog under `<root>/catalog/` and the
stac-geoparquet items under `<root>/stac/` that the STAC API searches.

Only published datasets are linked from the static root catalog. Drafts and datasets under
review are written beside it, unlinked, under `catalog/unlisted/<id>/` so a provider
can review exactly what will be published, reachable by id but not browsable or searchable.
The geoparquet holds every dataset; the API decides per request what the public may see,
so an approval is visible at once, without waiting for the next rebuild.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pystac
import stac_geoparquet.arrow

from lake.cluster import describe, job_client, run_tasks
from lake.harvest_log import HarvestRecord
from lake.registry import Registry, Stream
from lake.storage import Storage
from stac.collection import build_collection
from stac.contents import read_contents
from stac.extents import LakeContents
from stac.publish import all_states

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

CATALOG_DIR = "catalog"
API_DIR = "stac"
ITEMS_FILE = "items.parquet"
COLLECTIONS_FILE = "collections.json"
ROOT_ID = "coastlake"
#: Free-form properties (whatever a provider said about itself) that have no fixed shape:
#: kept as JSON text in the geoparquet, whose columns need one type, and decoded on the way out.
JSON_PROPERTIES = ("coastlake:provider_metadata", "cube:dimensions", "cube:variables")


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build wrote, for the CLI and the logs."""

    collections: int
    published: int
    items: int
    files: int
    seconds: float


def _items_table(items: list[dict[str, Any]]) -> pa.Table:
    reader = stac_geoparquet.arrow.parse_stac_items_to_arrow(items)
    return reader.read_all()


def write_geoparquet(storage: Storage, items: list[dict[str, Any]], path: str) -> None:
    """Write items as stac-geoparquet to `path` in the lake (atomic replace)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / ITEMS_FILE
        if items:
            stac_geoparquet.arrow.to_parquet(_items_table(items), local)
        else:
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"id": pa.array([], pa.string())}), local)
        storage.write_bytes(path, local.read_bytes())


def dataset_entries(
    stream: Stream, contents: LakeContents, storage: Storage
) -> tuple[pystac.Collection, list[pystac.Item]]:
    """One dataset's collection and items (a task on a worker when built on a cluster)."""
    return build_collection(stream, contents, storage)


def build_catalog(
    storage: Storage,
    registry: Registry,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> BuildResult:
    """Rebuild the static catalog and the search index from the registry and the lake.

    With a Dask `client` (or a `scheduler` address, or `workers` for a local cluster), each
    dataset's collection and items are built by a task on the cluster; this process reads
    the lake's contents once before and writes every catalog file after, so the files are
    the same either way. Without any of them the build runs here: it follows every
    harvest, and most datasets take milliseconds.
    """
    started = time.perf_counter()
    states = all_states(storage=storage, registry=registry)
    contents = read_contents(storage)
    streams = list(registry.streams)
    if client is None and scheduler is None and workers is None:
        built = [dataset_entries(stream, contents, storage) for stream in streams]
    else:
        with job_client(client, scheduler, workers) as cluster:
            log.info("catalog: sending %d datasets to %s", len(streams), describe(cluster))
            built = run_tasks(
                cluster,
                dataset_entries,
                streams,
                contents,
                storage,
                what="catalog: datasets built",
            )
    root = pystac.Catalog(
        id=ROOT_ID,
        title="coastlake: regional ocean observations",
        description=(
            "Every published dataset of the lake: station time series (Parquet), model and "
            "satellite grids (Zarr) and references to partners' feeds."
        ),
    )
    unlisted: list[pystac.Collection] = []
    api_items: list[dict[str, Any]] = []
    api_collections: list[dict[str, Any]] = []
    for stream, (collection, items) in zip(streams, built, strict=True):
        state = states[stream.id]
        if state.published:
            root.add_child(collection)
        else:
            unlisted.append(collection)
        for item in items:
            d = copy.deepcopy(item.to_dict(include_self_link=False, transform_hrefs=False))
            d["links"] = []
            d["collection"] = stream.id
            for key in JSON_PROPERTIES:
                if key in d["properties"]:
                    d["properties"][key] = json.dumps(d["properties"][key])
            api_items.append(d)
        c = copy.deepcopy(collection.to_dict(include_self_link=False, transform_hrefs=False))
        c["links"] = [link for link in c["links"] if link["rel"] not in ("item", "root", "parent")]
        api_collections.append(c)
    files = _write_static(storage, root, unlisted)
    write_geoparquet(storage, api_items, storage.url(API_DIR, ITEMS_FILE))
    storage.write_bytes(
        storage.url(API_DIR, COLLECTIONS_FILE),
        json.dumps(
            {
                "collections": api_collections,
                "publication": {s.id: s.publication.value for s in registry.streams},
                "built_at": time.time(),
            }
        ).encode(),
    )
    result = BuildResult(
        collections=len(registry.streams),
        published=sum(1 for s in states.values() if s.published),
        items=len(api_items),
        files=files,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "catalog rebuilt: %d datasets (%d published), %d items, %d files in %.1f s",
        result.collections,
        result.published,
        result.items,
        result.files,
        result.seconds,
    )
    return result


def _write_static(storage: Storage, root: pystac.Catalog, unlisted: list[pystac.Collection]) -> int:
    """Save with pystac into a temp folder, then copy into the lake and drop stale files."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root.normalize_hrefs(str(base))
        root.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
        for collection in unlisted:
            folder = base / "unlisted" / collection.id
            collection.normalize_hrefs(str(folder))
            collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
        written = sorted(p for p in base.rglob("*.json"))
        keep = set()
        for path in written:
            rel = path.relative_to(base).as_posix()
            keep.add(rel)
            storage.write_bytes(storage.url(CATALOG_DIR, rel), path.read_bytes())
    prefix = storage.url(CATALOG_DIR)
    for url in _walk(storage, prefix):
        rel = url[len(prefix) :].lstrip("/")
        if rel not in keep:
            storage.delete(url)
    return len(keep)


def _walk(storage: Storage, url: str) -> list[str]:
    path = url.removeprefix("s3://") if storage.is_s3 else url
    try:
        found = storage.fs.find(path)
    except FileNotFoundError:
        return []
    prefix = "s3://" if storage.is_s3 else ""
    return [prefix + p for p in found]


def rebuild_after_harvest(
    storage: Storage,
    registry: Registry,
    records: list[HarvestRecord],
    client: Client | None = None,
) -> None:
    """AFTER_HARVEST step: a failed catalog build is logged, never undoes the harvest.

    This is an edge in the sense of STYLE.md: the data are already committed, so whatever
    goes wrong here (a bad grid, an unreadable attribute) is reported and the harvest's
    records stand; `lake catalog build` shows the same error in full. A harvest running on
    a Dask cluster passes its `client`, and the datasets are built there.
    """
    try:
        build_catalog(storage, registry, client=client)
    except Exception as exc:
        log.error("catalog rebuild after harvest failed (run `lake catalog build`): %s", exc)

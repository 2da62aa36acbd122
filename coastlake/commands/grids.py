"""`lake grid ...` and `lake layer ...`: grids into Icechunk, GIS layers into GeoParquet, and
their section of `lake status`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from coastlake.commands.common import console, fail, open_registry, out

grid_app = typer.Typer(help="Gridded data: models, satellites, HF radar (Zarr in Icechunk).")
layer_app = typer.Typer(help="Static GIS layers (GeoParquet; GeoJSON and Shapefile out).")

Root = Annotated[str | None, typer.Option(help="Lake root (default LAKE_ROOT).")]


def _storage(root: str | None) -> Any:
    from lake.settings import get_settings
    from lake.storage import Storage

    return Storage.from_settings(get_settings(), root=root)


@grid_app.command("ingest")
def grid_ingest(
    stream: Annotated[
        list[str] | None, typer.Option("--stream", "-s", help="Grid stream id (repeatable).")
    ] = None,
    all_streams: Annotated[bool, typer.Option("--all", help="Every kind: grid stream.")] = False,
    since: Annotated[
        datetime | None, typer.Option(help="Only time steps from (UTC); griddap asks for them.")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Only time steps until (UTC).")] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (default LAKE_DASK_SCHEDULER): source files are "
            "read and normalized on its workers."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Without a scheduler: a local cluster of this many processes (default: "
            "read in this process)."
        ),
    ] = None,
    root: Root = None,
) -> None:
    """Read grid streams' sources and commit them to their Icechunk repositories.

    Without --since/--until, griddap, OPeNDAP and THREDDS sources are asked for every time
    step after the newest stored one, so a missed run catches up."""
    from contextlib import nullcontext

    from ingest.grids import ingest_grid
    from lake.cluster import dask_client
    from lake.errors import LakeError
    from lake.registry import Kind
    from lake.settings import get_settings

    registry = open_registry()
    if all_streams:
        streams = [s for s in registry.streams if s.kind is Kind.grid]
    elif stream:
        try:
            streams = [registry.get(s) for s in stream]
        except LakeError as exc:
            raise fail(exc) from None
    else:
        console.print("name a stream with --stream ID, or use --all")
        raise typer.Exit(2)
    storage = _storage(root)
    failed = 0
    address = scheduler or get_settings().dask_scheduler
    # One cluster for every stream of the command; none (this process) when neither a
    # scheduler nor --workers is given: a poll's file or two is faster read here.
    cluster = dask_client(address, workers or 2) if address or workers else nullcontext(None)
    with cluster as dask:
        for s in streams:
            try:
                result = ingest_grid(storage, s, since=since, until=until, cluster=dask)
            except LakeError as exc:
                failed += 1
                console.print(f"[red]{s.id}:[/red] {exc}")
                continue
            run = f" run {result.run}" if result.run else ""
            console.print(
                f"{s.id}: {len(result.sources)} source(s), {result.times_added} new time step(s)"
                f"{run}, snapshot {result.snapshot}"
            )
    if failed:
        raise typer.Exit(1)


@grid_app.command("list")
def grid_list(root: Root = None) -> None:
    """Grids in the lake: variables, extent, times, runs."""

    out.print(grid_table(_storage(root)))


@grid_app.command("history")
def grid_history(dataset_id: str, root: Root = None) -> None:
    """Commits of a grid, newest first (each append or run is one)."""
    from lake.grids import GridStore

    for h in GridStore(_storage(root), dataset_id).history():
        out.print(f"{h['id']}  {h['written_at']:%Y-%m-%d %H:%M:%S}  {h['message']}")


@grid_app.command("expire")
def grid_expire(
    dataset_id: str,
    days: Annotated[float, typer.Option(help="Forget versions older than this many days.")] = 7,
    root: Root = None,
) -> None:
    """Drop old versions of a grid for good (frees superseded runs' storage)."""
    from datetime import UTC, datetime, timedelta

    from lake.errors import LakeError
    from lake.grids import GridStore

    try:
        commits, objects = GridStore(_storage(root), dataset_id).expire(
            datetime.now(UTC) - timedelta(days=days)
        )
    except LakeError as exc:
        raise fail(exc) from None
    console.print(f"{dataset_id}: {commits} old versions expired, {objects} objects deleted")


@grid_app.command("preview")
def grid_preview(
    dataset_id: str,
    variable: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")],
    time: Annotated[str | None, typer.Option(help="ISO time (default newest).")] = None,
    size: Annotated[int, typer.Option(help="Longest side in pixels.")] = 800,
    root: Root = None,
) -> None:
    """Write a PNG picture of one grid layer (for users without GIS tools)."""
    from tiles.render import MapRequest, render_map

    png = render_map(
        _storage(root), MapRequest(dataset_id, variable, width=size, height=size, time=time)
    )
    output.write_bytes(png)
    console.print(f"wrote {output} ({len(png):,} bytes)")


@grid_app.command("serve")
def grid_serve(host: str = "127.0.0.1", port: int = 8010, root: Root = None) -> None:
    """Serve only the map services (tiles, WMS, OPeNDAP/EDR, features)."""
    from coastlake.server.app import MAP_PARTS, run

    run(host=host, port=port, storage=_storage(root), parts=MAP_PARTS)


@layer_app.command("ingest")
def layer_ingest(
    source: Annotated[str | None, typer.Argument(help="Shapefile / GeoJSON path.")] = None,
    layer_id: Annotated[str | None, typer.Option("--id", help="Layer id for a file.")] = None,
    stream: Annotated[
        str | None, typer.Option("--stream", "-s", help="A kind: vector stream.")
    ] = None,
    title: Annotated[str, typer.Option(help="Title for a file.")] = "",
    crs: Annotated[str | None, typer.Option(help="CRS if the file has none.")] = None,
    root: Root = None,
) -> None:
    """Store a GIS layer in the lake (reprojected to EPSG:4326, as GeoParquet)."""
    from lake.errors import LakeError
    from lake.layers import ingest_layer

    try:
        if stream:
            from ingest.vector_layers import ingest_layer_stream

            # As the harvest does: fetched over HTTP or from a folder, raw bytes kept.
            info = ingest_layer_stream(_storage(root), open_registry().get(stream))
        elif source and layer_id:
            info = ingest_layer(_storage(root), layer_id, source, title=title, assume_crs=crs)
        else:
            console.print("give --stream ID, or a file and --id")
            raise typer.Exit(2)
    except LakeError as exc:
        raise fail(exc) from None
    console.print(f"layer {info.layer_id}: {info.features} features, bbox {info.bbox}")


@layer_app.command("list")
def layer_list(root: Root = None) -> None:
    """Vector layers in the lake."""

    out.print(layer_table(_storage(root)))


@layer_app.command("export")
def layer_export(
    layer_id: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    bbox: Annotated[str | None, typer.Option(help="minlon,minlat,maxlon,maxlat to cut to.")] = None,
    root: Root = None,
) -> None:
    """Write a layer as GeoJSON (.geojson/.json) or a zipped Shapefile (.zip)."""
    import json

    from lake.errors import LakeError
    from lake.layers import read_layer, to_geojson, to_shapefile_zip

    box = tuple(float(x) for x in bbox.split(",")) if bbox else None
    try:
        gdf = read_layer(_storage(root), layer_id, bbox=box)  # type: ignore[arg-type]
    except LakeError as exc:
        raise fail(exc) from None
    if output.suffix.lower() == ".zip":
        output.write_bytes(to_shapefile_zip(gdf, layer_id))
    else:
        output.write_text(json.dumps(to_geojson(gdf)))
    console.print(f"wrote {len(gdf)} features to {output}")


def grid_table(storage: Any) -> Any:
    from rich.table import Table

    from lake.grids import list_grids

    table = Table("grid", "variables", "bbox", "times", "first", "last", "runs", title="grids")
    for g in list_grids(storage):
        table.add_row(
            g.dataset_id,
            ", ".join(f"{v.name} ({v.units or '-'})" for v in g.variables),
            ", ".join(f"{x:.2f}" for x in g.bbox) if g.bbox else "-",
            str(g.times),
            str(g.time_start or "-"),
            str(g.time_end or "-"),
            str(len(g.runs)) if g.runs else "-",
        )
    return table


def layer_table(storage: Any) -> Any:
    from rich.table import Table

    from lake.layers import list_layers

    table = Table("layer", "title", "features", "geometry", "bbox", "source CRS", title="layers")
    for layer in list_layers(storage):
        table.add_row(
            layer.layer_id,
            layer.title,
            str(layer.features),
            ", ".join(layer.geometry_types),
            ", ".join(f"{x:.2f}" for x in layer.bbox),
            layer.source_crs or "-",
        )
    return table


def status_section(lk: Any, registry: Any) -> None:
    """`lake status`: the grids and layers in the lake."""
    from lake.settings import get_settings
    from lake.storage import Storage

    storage = getattr(lk, "storage", None) or Storage.from_settings(
        get_settings(), root=str(lk.root)
    )
    out.print(grid_table(storage))
    out.print(layer_table(storage))


def register(app: typer.Typer) -> None:
    app.add_typer(grid_app, name="grid")
    app.add_typer(layer_app, name="layer")

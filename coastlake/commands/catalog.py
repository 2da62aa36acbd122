"""`lake catalog build` and `lake publish request|approve|reject|status`: the STAC catalog and
the provider review that decides what the public catalog shows."""

from __future__ import annotations

from typing import Annotated

import typer

from coastlake.commands.common import console, fail, open_registry, out

catalog_app = typer.Typer(help="The STAC catalog of the lake.", no_args_is_help=True)
publish_app = typer.Typer(
    help="Provider review: a dataset enters the public catalog only once approved.",
    no_args_is_help=True,
)

By = Annotated[str, typer.Option("--by", help="Who reviews (name or email).")]
Note = Annotated[str, typer.Option("--note", help="Why, in a sentence.")]
Dataset = Annotated[str, typer.Argument(help="Dataset (stream) id.")]


def _build(scheduler: str | None = None, workers: int | None = None) -> None:
    from lake.errors import LakeError
    from lake.storage import Storage
    from stac.build import build_catalog

    storage = Storage.from_settings()
    try:
        result = build_catalog(
            storage,
            open_registry(),
            scheduler=scheduler or storage.settings.dask_scheduler,
            workers=workers,
        )
    except LakeError as exc:
        raise fail(exc) from None
    console.print(
        f"catalog: {result.collections} datasets ({result.published} published), "
        f"{result.items} items, {result.files} static files in {result.seconds:.1f} s"
    )


@catalog_app.command("build")
def build(
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (default LAKE_DASK_SCHEDULER); one task per dataset."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Without a scheduler: a local cluster of this many processes (default: "
            "built in this process)."
        ),
    ] = None,
) -> None:
    """Rebuild the static catalog and the search index from the registry and the lake."""
    _build(scheduler, workers)


def _move(action: str, dataset: str, by: str, note: str) -> None:
    from lake.errors import LakeError
    from lake.storage import Storage
    from stac import publish

    func = {
        "request": publish.request_review,
        "approve": publish.approve,
        "reject": publish.reject,
    }[action]
    try:
        new = func(dataset, by, note, storage=Storage.from_settings(), registry=open_registry())
    except LakeError as exc:
        raise fail(exc) from None
    console.print(f"{dataset}: now {new.state.value}")
    _build()


@publish_app.command("request")
def request(dataset: Dataset, by: By, note: Note = "") -> None:
    """Send a draft dataset to its provider for review."""
    _move("request", dataset, by, note)


@publish_app.command("approve")
def approve(dataset: Dataset, by: By, note: Note = "") -> None:
    """The provider approves: the dataset enters the public catalog and search."""
    _move("approve", dataset, by, note)


@publish_app.command("reject")
def reject(dataset: Dataset, by: By, note: Note = "") -> None:
    """Send a dataset back to draft (from review, or withdraw a published one)."""
    _move("reject", dataset, by, note)


@publish_app.command("status")
def status() -> None:
    """Every dataset's publication state and its last review step."""
    from rich.table import Table

    from lake.storage import Storage
    from stac.publish import all_states

    table = Table("dataset", "state", "last step", "by", "when", "note")
    for dataset_id, st in all_states(
        storage=Storage.from_settings(), registry=open_registry()
    ).items():
        last = st.history[-1] if st.history else None
        table.add_row(
            dataset_id,
            st.state.value,
            last.action if last else "(registry)",
            last.by if last else "",
            last.at if last else "",
            last.note if last else "",
        )
    out.print(table)


def status_section(lk: object, registry: object) -> None:
    """`lake status`: which datasets the public catalog shows and which await review."""
    from lake.registry import Registry
    from stac.publish import all_states

    storage = getattr(lk, "storage", None)
    if storage is None or not isinstance(registry, Registry):
        return
    states = all_states(storage=storage, registry=registry)
    waiting = sorted(k for k, v in states.items() if not v.published)
    out.print(
        f"catalog: {len(states) - len(waiting)} of {len(states)} datasets published"
        + (f"; not public yet: {', '.join(waiting)}" if waiting else "")
    )


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
    app.add_typer(publish_app, name="publish")

"""Publication workflow: draft -> review -> published, with who, when and why.

Data are reachable from the moment they are ingested; what this decides is whether a dataset
shows in the public catalog and in search. The registry's `publication` field is a dataset's
initial state; every later change is recorded in `<root>/publication/state.json` in the lake,
so the history survives a registry edit and is the same for the CLI and the server.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from lake.errors import ConfigError, NotFound
from lake.registry import Publication, Registry, load_registry
from lake.settings import get_settings
from lake.storage import Storage

log = logging.getLogger(__name__)

STATE_PATH = ("publication", "state.json")

#: Allowed moves: (from, action) -> to. Reject sends a dataset back to draft, also from
#: published (a provider withdrawing metadata they no longer stand behind).
TRANSITIONS: dict[tuple[Publication, str], Publication] = {
    (Publication.draft, "request"): Publication.review,
    (Publication.review, "approve"): Publication.published,
    (Publication.review, "reject"): Publication.draft,
    (Publication.published, "reject"): Publication.draft,
}


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded step of a dataset's review."""

    action: str
    from_state: str
    to_state: str
    by: str
    note: str
    at: str


@dataclass(frozen=True, slots=True)
class PublicationState:
    """Where a dataset stands and how it got there."""

    dataset_id: str
    state: Publication
    history: list[Change] = field(default_factory=list)

    @property
    def published(self) -> bool:
        return self.state is Publication.published

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "state": self.state.value,
            "history": [asdict(c) for c in self.history],
        }


def _context(storage: Storage | None, registry: Registry | None) -> tuple[Storage, Registry]:
    return (
        storage or Storage.from_settings(),
        registry or load_registry(get_settings().registry),
    )


def _read(storage: Storage) -> dict[str, Any]:
    url = storage.url(*STATE_PATH)
    try:
        data = json.loads(storage.read_bytes(url))
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("publication state is not a JSON object", file=url)
    return data


def _states(storage: Storage, registry: Registry) -> dict[str, PublicationState]:
    recorded = _read(storage)
    out: dict[str, PublicationState] = {}
    for stream in registry.streams:
        entry = recorded.get(stream.id)
        if entry is None:
            out[stream.id] = PublicationState(stream.id, stream.publication)
            continue
        out[stream.id] = PublicationState(
            stream.id,
            Publication(entry["state"]),
            [Change(**c) for c in entry.get("history", [])],
        )
    return out


def all_states(
    *, storage: Storage | None = None, registry: Registry | None = None
) -> dict[str, PublicationState]:
    """Every registered dataset's publication state, keyed by dataset id."""
    storage, registry = _context(storage, registry)
    return _states(storage, registry)


def published_ids(*, storage: Storage | None = None, registry: Registry | None = None) -> set[str]:
    """Ids of the datasets the public catalog and search may show."""
    return {k for k, v in all_states(storage=storage, registry=registry).items() if v.published}


def state(
    dataset_id: str, *, storage: Storage | None = None, registry: Registry | None = None
) -> PublicationState:
    """A dataset's state and history; NotFound if the registry does not list it."""
    storage, registry = _context(storage, registry)
    states = _states(storage, registry)
    if dataset_id not in states:
        raise NotFound(f"no dataset {dataset_id!r} in {registry.path}; known: {registry.ids()}")
    return states[dataset_id]


def _move(
    action: str,
    dataset_id: str,
    by: str,
    note: str,
    storage: Storage | None,
    registry: Registry | None,
) -> PublicationState:
    storage, registry = _context(storage, registry)
    if not by.strip():
        raise ConfigError(f"{action} of dataset {dataset_id!r} needs the reviewer's name (--by)")
    current = state(dataset_id, storage=storage, registry=registry)
    target = TRANSITIONS.get((current.state, action))
    if target is None:
        allowed = sorted(a for (s, a) in TRANSITIONS if s is current.state)
        raise ConfigError(
            f"dataset {dataset_id!r} is {current.state.value}: cannot {action} it "
            f"(allowed now: {', '.join(allowed) or 'nothing'})"
        )
    change = Change(
        action=action,
        from_state=current.state.value,
        to_state=target.value,
        by=by.strip(),
        note=note,
        at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    new = PublicationState(dataset_id, target, [*current.history, change])
    recorded = _read(storage)
    recorded[dataset_id] = new.to_dict()
    storage.write_bytes(
        storage.url(*STATE_PATH), json.dumps(recorded, indent=1, sort_keys=True).encode()
    )
    log.info(
        "dataset=%s %s by %s: %s -> %s", dataset_id, action, by, change.from_state, target.value
    )
    return new


def request_review(
    dataset_id: str,
    by: str,
    note: str = "",
    *,
    storage: Storage | None = None,
    registry: Registry | None = None,
) -> PublicationState:
    """Send a draft to its provider for review (draft -> review)."""
    return _move("request", dataset_id, by, note, storage, registry)


def approve(
    dataset_id: str,
    by: str,
    note: str = "",
    *,
    storage: Storage | None = None,
    registry: Registry | None = None,
) -> PublicationState:
    """The provider approves the metadata: the dataset enters catalog and search."""
    return _move("approve", dataset_id, by, note, storage, registry)


def reject(
    dataset_id: str,
    by: str,
    note: str = "",
    *,
    storage: Storage | None = None,
    registry: Registry | None = None,
) -> PublicationState:
    """Send a dataset back to draft (from review, or withdraw a published one)."""
    return _move("reject", dataset_id, by, note, storage, registry)

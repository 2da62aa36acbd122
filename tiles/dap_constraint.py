"""DAP2 constraint expressions: the projection a client sends after `?` in an OPeNDAP URL.

`sst[0:1:4][10:2:20][5],time` asks for the grid `sst` with three hyperslabs and the array
`time` whole. A DAP hyperslab is `[start:stride:stop]` with an *inclusive* stop (`[i:j]` is
`[i:1:j]`, `[i]` is one index), unlike a Python slice; `parse_constraint` turns each into the
Python `slice` that selects the same indices, and `resolve_slices` checks them against the
variable's shape so an index past the end is a 400, never an empty or shortened answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from lake.errors import RequestError

_COMPONENT = re.compile(r"^(?P<name>[^\[\]]+)(?P<slabs>(\[[^\[\]]*\])*)$")
_SLAB = re.compile(r"\[([^\[\]]*)\]")


@dataclass(frozen=True)
class Hyperslab:
    """One `[start:stride:stop]` as the client wrote it (stop inclusive, None = one index)."""

    start: int
    stride: int
    stop: int


@dataclass
class Projected:
    """One projected name: a path (`sst` or `sst.sst`) and the hyperslabs of its last part."""

    path: list[str]
    slabs: list[Hyperslab] = field(default_factory=list)

    @property
    def name(self) -> str:
        return ".".join(self.path)


def _hyperslab(text: str, item: str) -> Hyperslab:
    parts = text.split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise RequestError(f"constraint {item!r}: hyperslab [{text}] must be integers") from None
    if len(numbers) == 1:
        start, stride, stop = numbers[0], 1, numbers[0]
    elif len(numbers) == 2:
        start, stride, stop = numbers[0], 1, numbers[1]
    elif len(numbers) == 3:
        start, stride, stop = numbers
    else:
        raise RequestError(f"constraint {item!r}: hyperslab [{text}] is not [start:stride:stop]")
    if start < 0 or stride < 1 or stop < start:
        raise RequestError(
            f"constraint {item!r}: hyperslab [{text}] needs 0 <= start <= stop and stride >= 1"
        )
    return Hyperslab(start, stride, stop)


def _projected(item: str) -> Projected:
    path: list[str] = []
    slabs: list[Hyperslab] = []
    for part in item.split("."):
        m = _COMPONENT.match(part.strip())
        if not m or slabs:  # hyperslabs only on the last part (we serve no sequences)
            raise RequestError(f"constraint {item!r} is not a DAP2 projection")
        path.append(m.group("name"))
        slabs = [_hyperslab(s, item) for s in _SLAB.findall(m.group("slabs"))]
    return Projected(path, slabs)


def parse_constraint(query: str) -> list[Projected]:
    """The projections of a DAP2 constraint expression (the URL's query, still quoted)."""
    text = unquote(query)
    projection, _, selection = text.partition("&")
    if selection.strip():
        raise RequestError(
            "selections (`&...`) apply to DAP sequences; these grids take hyperslabs only "
            f"(got {selection!r})"
        )
    items = [i for i in projection.split(",") if i.strip()]
    return [_projected(i.strip()) for i in items]


def resolve_slices(name: str, slabs: list[Hyperslab], shape: tuple[int, ...]) -> list[slice]:
    """Python slices for `slabs` on a variable of `shape`; missing trailing slabs mean all."""
    if len(slabs) > len(shape):
        raise RequestError(f"{name} has {len(shape)} dimensions, got {len(slabs)} hyperslabs")
    out: list[slice] = []
    for i, size in enumerate(shape):
        if i >= len(slabs):
            out.append(slice(0, size, 1))
            continue
        s = slabs[i]
        if s.stop >= size:
            raise RequestError(
                f"{name}: hyperslab [{s.start}:{s.stride}:{s.stop}] on dimension {i} is past "
                f"its last index {size - 1}"
            )
        out.append(slice(s.start, s.stop + 1, s.stride))
    return out


def sliced_length(s: slice) -> int:
    """How many indices a resolved slice selects."""
    return len(range(s.start, s.stop, s.step))

"""DAP2 responses (DDS, DAS, DODS) for a projection of a lake grid.

The constrained DDS describes exactly what the DODS body carries: a projected Grid
(`sst[0:1:2][..][..]`) keeps its maps, sliced alike; a projected member of a Grid (`sst.sst`,
`sst.time`, what netCDF-C and pydap send) comes back inside a Structure named after the
Grid, as the reference servers answer, so a client finds it at the path it asked for. Data
are XDR (big-endian; arrays prefixed by their length twice; Int16 and Byte widened or padded
to four bytes) and read block by block so a whole-grid request streams.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lake.errors import RequestError
from tiles.dap_constraint import Projected, resolve_slices, sliced_length
from tiles.dap_model import DapArray, DapEntry, DapGrid, das_block

# values per block read from the store while streaming a DODS body
BLOCK_VALUES = 4_000_000

_XDR: dict[str, str] = {
    "Byte": "u1",
    "Int16": ">i4",
    "UInt16": ">u4",
    "Int32": ">i4",
    "UInt32": ">u4",
    "Float32": ">f4",
    "Float64": ">f8",
}


@dataclass
class Sliced:
    """An Array and the slices of it a response carries."""

    array: DapArray
    slices: tuple[slice, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(sliced_length(s) for s in self.slices)

    def decl(self) -> str:
        dims = "".join(f"[{d} = {n}]" for d, n in zip(self.array.dims, self.shape, strict=True))
        return f"{self.array.dap_type} {self.array.name}{dims};"


@dataclass
class GridPart:
    name: str
    array: Sliced
    maps: list[Sliced]


@dataclass
class StructurePart:
    name: str
    members: list[Sliced]


Part = Sliced | GridPart | StructurePart


def _whole(array: DapArray) -> Sliced:
    return Sliced(array, tuple(slice(0, n, 1) for n in array.shape))


def _grid_part(grid: DapGrid, slices: tuple[slice, ...]) -> GridPart:
    maps = [Sliced(m, (s,)) for m, s in zip(grid.maps, slices, strict=True)]
    return GridPart(grid.name, Sliced(grid.array, slices), maps)


def _member(grid: DapGrid, name: str) -> DapArray:
    for candidate in [grid.array, *grid.maps]:
        if candidate.name == name:
            return candidate
    raise RequestError(f"{grid.name} has no member {name!r}", status=404)


def response_parts(entries: dict[str, DapEntry], projection: list[Projected]) -> list[Part]:
    """What a constrained response carries, in the order the client asked."""
    if not projection:
        return [
            _whole(e) if isinstance(e, DapArray) else _grid_part(e, _whole(e.array).slices)
            for e in entries.values()
        ]
    parts: list[Part] = []
    structures: dict[str, StructurePart] = {}
    for p in projection:
        entry = entries.get(p.path[0])
        if entry is None:
            raise RequestError(f"no variable {p.path[0]!r} in this dataset", status=404)
        if len(p.path) == 1:
            array = entry.array if isinstance(entry, DapGrid) else entry
            slices = tuple(resolve_slices(p.name, p.slabs, array.shape))
            parts.append(
                _grid_part(entry, slices) if isinstance(entry, DapGrid) else Sliced(entry, slices)
            )
        elif len(p.path) == 2 and isinstance(entry, DapGrid):
            member = _member(entry, p.path[1])
            sliced = Sliced(member, tuple(resolve_slices(p.name, p.slabs, member.shape)))
            if entry.name not in structures:
                structures[entry.name] = StructurePart(entry.name, [])
                parts.append(structures[entry.name])
            structures[entry.name].members.append(sliced)
        else:
            raise RequestError(f"no variable {p.name!r} in this dataset", status=404)
    return parts


def dds_text(dataset_name: str, parts: list[Part]) -> str:
    lines = ["Dataset {"]
    for part in parts:
        if isinstance(part, Sliced):
            lines.append(f"    {part.decl()}")
        elif isinstance(part, GridPart):
            lines += ["    Grid {", "      ARRAY:", f"        {part.array.decl()}", "      MAPS:"]
            lines += [f"        {m.decl()}" for m in part.maps]
            lines.append(f"    }} {part.name};")
        else:
            lines.append("    Structure {")
            lines += [f"        {m.decl()}" for m in part.members]
            lines.append(f"    }} {part.name};")
    lines.append(f"}} {dap_name(dataset_name)};")
    return "\n".join(lines) + "\n"


def das_text(entries: dict[str, DapEntry], global_attrs: dict[str, Any]) -> str:
    lines = ["Attributes {"]
    for entry in entries.values():
        array = entry.array if isinstance(entry, DapGrid) else entry
        lines += das_block(entry.name, array.attrs)
    lines += das_block("NC_GLOBAL", global_attrs)
    lines.append("}")
    return "\n".join(lines) + "\n"


def dap_name(text: str) -> str:
    """A name every DDS parser reads (the dataset id may hold dashes)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _xdr_values(values: np.ndarray, dap_type: str) -> bytes:
    return np.ascontiguousarray(values, dtype=_XDR[dap_type]).tobytes()


def _encode(sliced: Sliced) -> Iterator[bytes]:
    array, shape = sliced.array, sliced.shape
    if not shape:  # a scalar: the value alone, four bytes at least
        value = array.read(())
        if array.dap_type == "Byte":
            yield struct.pack(">I", int(np.asarray(value)))
        else:
            yield _xdr_values(np.asarray(value).reshape(1), array.dap_type)
        return
    count = int(np.prod(shape))
    yield struct.pack(">II", count, count)
    per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    rows = max(1, BLOCK_VALUES // max(per_row, 1))
    first = sliced.slices[0]
    for begin in range(first.start, first.stop, rows * first.step):
        end = min(first.stop, begin + rows * first.step)
        block = array.read((slice(begin, end, first.step), *sliced.slices[1:]))
        yield _xdr_values(block.reshape(-1), array.dap_type)
    if array.dap_type == "Byte" and count % 4:
        yield b"\0" * (4 - count % 4)


def value_count(parts: list[Part]) -> int:
    """How many values a response carries (its size in values, maps included)."""
    arrays: list[Sliced] = []
    for part in parts:
        if isinstance(part, Sliced):
            arrays.append(part)
        elif isinstance(part, GridPart):
            arrays += [part.array, *part.maps]
        else:
            arrays += part.members
    return sum(int(np.prod(a.shape)) for a in arrays)


def dods_body(parts: list[Part]) -> Iterator[bytes]:
    """The XDR data of every part, in DDS order."""
    for part in parts:
        if isinstance(part, Sliced):
            yield from _encode(part)
        elif isinstance(part, GridPart):
            for sliced in [part.array, *part.maps]:
                yield from _encode(sliced)
        else:
            for sliced in part.members:
                yield from _encode(sliced)

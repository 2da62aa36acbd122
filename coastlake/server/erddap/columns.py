"""The columns a tabledap dataset offers: keys, position, time and one column per variable.

Station series are stored long (one row per value); ERDDAP clients expect them wide, one column
per variable named as ERDDAP names them (the CF standard name) with its units, and QC flags as
further columns (`<name>_qc_agg`, `<name>_qc_<test>`) a client can ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from lake.deps import LakeDeps
from lake.errors import NotFound, RequestError
from lake.flags import FLAG_MEANINGS, FLAG_VALUES
from lake.tables import QC_TESTS

ColumnKind = Literal["string", "time", "float", "flag"]
SAFE_NAME = re.compile(r"[^A-Za-z0-9_]")

#: How ERDDAP's info page shows `flag_values` (a NetCDF file carries them as an int8 array).
FLAG_VALUES_TEXT = ", ".join(str(v) for v in FLAG_VALUES)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the wide table: its name, type, units and the CF attributes it carries."""

    name: str
    kind: ColumnKind
    units: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    variable: str | None = None  # CF standard name of the long rows it comes from
    source: str = "value"  # value | qc_agg | qc_<test>

    @property
    def erddap_type(self) -> str:
        return {"string": "String", "time": "double", "float": "double", "flag": "byte"}[self.kind]


@dataclass(frozen=True, slots=True)
class DatasetColumns:
    """Every column of one dataset, in ERDDAP order; `default` is what an empty selection gets."""

    dataset_id: str
    columns: dict[str, Column]
    default: tuple[str, ...]

    def get(self, name: str) -> Column:
        """The column called `name`; RequestError listing the dataset's columns otherwise."""
        try:
            return self.columns[name]
        except KeyError:
            raise RequestError(
                f"dataset {self.dataset_id!r} has no variable {name[:80]!r}; "
                f"its variables are: {', '.join(self.default)}"
            ) from None

    @property
    def data_columns(self) -> list[Column]:
        return [c for c in self.columns.values() if c.variable is not None]


KEY_COLUMNS: tuple[Column, ...] = (
    Column("station", "string", None, {"cf_role": "timeseries_id", "long_name": "station"}),
    Column(
        "longitude",
        "float",
        "degrees_east",
        {"standard_name": "longitude", "axis": "X", "long_name": "Longitude"},
    ),
    Column(
        "latitude",
        "float",
        "degrees_north",
        {"standard_name": "latitude", "axis": "Y", "long_name": "Latitude"},
    ),
    Column(
        "z",
        "float",
        "m",
        {"standard_name": "height", "positive": "up", "axis": "Z", "long_name": "height"},
    ),
    Column(
        "time",
        "time",
        "seconds since 1970-01-01T00:00:00Z",
        {"standard_name": "time", "axis": "T", "long_name": "Time", "time_origin": "01-JAN-1970"},
    ),
)


def safe_name(variable: str) -> str:
    """An ERDDAP variable name for a CF standard name (letters, digits, underscores)."""
    return SAFE_NAME.sub("_", variable)


def dataset_columns(ctx: LakeDeps, dataset_id: str) -> DatasetColumns:
    """The columns of `dataset_id`, from the variables the lake holds for it (else the registry).

    Raises NotFound when the lake has no rows for it and the registry does not know it.
    """
    rows = ctx.sql(
        "SELECT variable, any_value(units) AS units FROM observations_all "
        "WHERE dataset_id = ? GROUP BY variable ORDER BY variable",
        [dataset_id],
    ).to_pylist()
    variables = [(r["variable"], r["units"]) for r in rows]
    if not variables:
        stream = ctx.stream(dataset_id)
        if stream is None:
            raise NotFound(f"no dataset {dataset_id!r} in this lake")
        variables = sorted({(v.standard_name, v.units) for v in stream.variables})
    columns: dict[str, Column] = {c.name: c for c in KEY_COLUMNS}
    default = [c.name for c in KEY_COLUMNS]
    for variable, units in variables:
        name = safe_name(variable)
        columns[name] = Column(
            name,
            "float",
            units,
            {
                "standard_name": variable,
                "long_name": variable.replace("_", " ").capitalize(),
                "ancillary_variables": f"{name}_qc_agg",
            },
            variable=variable,
        )
        default.append(name)
    for variable, _units in variables:
        name = safe_name(variable)
        flag_attrs = {
            "flag_values": FLAG_VALUES_TEXT,
            "flag_meanings": FLAG_MEANINGS,
        }
        columns[f"{name}_qc_agg"] = Column(
            f"{name}_qc_agg",
            "flag",
            None,
            {
                **flag_attrs,
                "standard_name": "aggregate_quality_flag",
                "long_name": f"QARTOD aggregate flag of {name}",
            },
            variable=variable,
            source="qc_agg",
        )
        default.append(f"{name}_qc_agg")
        for test in QC_TESTS:
            columns[f"{name}_qc_{test}"] = Column(
                f"{name}_qc_{test}",
                "flag",
                None,
                {**flag_attrs, "long_name": f"QARTOD {test.replace('_', ' ')} flag of {name}"},
                variable=variable,
                source=f"qc_{test}",
            )
    return DatasetColumns(dataset_id, columns, tuple(default))

"""NDBC's text format, as in realtime2 files and the yearly history files, to long
source-named rows.

Files are whitespace-separated with two header lines ('#YY MM DD hh mm WDIR ...' and the
units line); missing values are 'MM' in real-time files and 99/999/9999 in history. Every
check names the stream, URL and raw file, so a data manager can open the file at fault.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ingest.base import SOURCE_SCHEMA, data_text
from lake.errors import ParseError

#: Columns that are text in the source and carry nothing we store.
TEXT_COLUMNS = frozenset({"STEEPNESS", "GTIME"})
#: Columns given as 16-point compass directions (spectral summary).
COMPASS_COLUMNS = frozenset({"SwD", "WWD"})
_POINTS = "N NNE NE ENE E ESE SE SSE S SSW SW WSW W WNW NW NNW"
COMPASS = {p: i * 22.5 for i, p in enumerate(_POINTS.split())}

#: Missing-value codes of the historical files (and some real-time columns), per column.
MISSING_CODES: dict[str, tuple[float, ...]] = {
    "WDIR": (999.0,),
    "MWD": (999.0,),
    "WSPD": (99.0,),
    "GST": (99.0,),
    "WVHT": (99.0,),
    "DPD": (99.0,),
    "APD": (99.0,),
    "PRES": (9999.0,),
    "ATMP": (999.0,),
    "WTMP": (999.0,),
    "DEWP": (999.0,),
    "VIS": (99.0,),
    "TIDE": (99.0,),
    "PTDY": (99.0,),
    "GDR": (999.0,),
}
TIME_COLUMNS = ("YY", "MM", "DD", "hh", "mm")

#: Builds the ParseError for one file from what went wrong.
Fail = Callable[[str], ParseError]


def parse_ndbc_text(
    body: bytes,
    *,
    stream_id: str,
    url: str,
    raw_file: str,
    station_id: str,
    lon: float | None = None,
    lat: float | None = None,
    known: tuple[datetime, datetime] | None = None,
) -> pa.Table:
    """Parse an NDBC realtime2 or historical text file into long source-named rows.

    With `known` (a span of times the lake holds for every series of the station), records
    inside it are skipped before parsing: a real-time file repeats 45 days to bring one new
    record.
    """

    def fail(what: str) -> ParseError:
        return ParseError(source=stream_id, url=url, file=raw_file, what=what)

    text = data_text(
        body, stream_id=stream_id, url=url, raw_file=raw_file, expected="an NDBC text file"
    )
    lines = text.splitlines()
    header, units, skip = _header(lines, fail)
    data_lines = lines[skip:]
    if known is not None:
        data_lines = _outside(data_lines, known)
    frame = _frame(data_lines, header, fail)
    times = pa.array(_times(frame, fail), pa.timestamp("us", tz="UTC"))
    z = None
    if "DEPTH" in frame.columns:
        z = -pd.to_numeric(frame["DEPTH"], errors="coerce").to_numpy(dtype="float64")
    tables = []
    for column in header:
        if column in TIME_COLUMNS or column == "DEPTH" or column in TEXT_COLUMNS:
            continue
        values = _values(frame, column, fail)
        column_units = "degree" if column in COMPASS_COLUMNS else units.get(column, "")
        tables.append(_rows(station_id, times, z, lon, lat, column, values, column_units))
    return pa.concat_tables(tables)


#: A data line that starts with a full time: "2025 06 01 00 00".
_STAMPED = re.compile(r"\d{4} \d\d \d\d \d\d \d\d ")


def _outside(lines: list[str], known: tuple[datetime, datetime]) -> list[str]:
    """The lines whose time is outside `known`, compared as text (the layout is fixed).

    Files with two-digit years or another layout are returned whole. At least the first
    line is kept, so that a file with nothing new still parses (its rows are then dropped
    as known, like any other known row).
    """
    stamped = [line for line in (lines[:1] + lines[-1:]) if line.strip()]
    if not stamped or not all(_STAMPED.match(line) for line in stamped):
        return lines
    first, last = (f"{t:%Y %m %d %H %M}" for t in known)
    kept = [line for line in lines if not first <= line[:16] <= last]
    return kept or lines[:1]


def _header(lines: list[str], fail: Fail) -> tuple[list[str], dict[str, str], int]:
    """(column names, units by column, header lines to skip). The units line is optional;
    'YYYY' (older history files) is read as 'YY'."""
    header = lines[0].lstrip("#").split()
    if header[:1] in (["YY"], ["YYYY"]) and len(header) > 5:
        header[0] = "YY"
    else:
        start = lines[0][:60].strip()
        raise fail(f"expected an NDBC header starting '#YY MM DD hh mm', found {start!r}")
    units_line = lines[1].lstrip("#").split() if len(lines) > 1 and lines[1].startswith("#") else []
    units = dict(zip(header, units_line, strict=False)) if len(units_line) == len(header) else {}
    return header, units, 2 if units else 1


def _frame(data_lines: list[str], header: list[str], fail: Fail) -> pd.DataFrame:
    """The data rows as text columns ('MM' already missing); refuses a file without rows or
    whose last row was cut short."""
    text = "\n".join(data_lines)
    # Numbers read as numbers straight away (a year of 10-minute records is 52 k rows);
    # a file with a value that is not one is read again as text, so that `_values` can
    # say which value in which row.
    typed = {c: "float64" for c in header if c not in TEXT_COLUMNS | COMPASS_COLUMNS}
    try:
        frame = _read(text, header, {**dict.fromkeys(header, str), **typed})
    except pd.errors.ParserError as exc:
        raise fail(f"rows do not match the header: {exc}") from None
    except ValueError:
        try:
            frame = _read(text, header, str)
        except (pd.errors.ParserError, ValueError) as exc:
            raise fail(f"rows do not match the header: {exc}") from None
    if frame.empty:
        raise fail("the file has a header but no data rows")
    rows = [line for line in data_lines if line.strip()]
    if rows and len(rows[-1].split()) < len(header):
        raise fail(
            f"the last row has {len(rows[-1].split())} of {len(header)} fields (truncated file?)"
        )
    return frame


def _read(text: str, header: list[str], dtype: Any) -> pd.DataFrame:
    return pd.read_csv(
        io.StringIO(text),
        sep=r"\s+",
        header=None,
        names=header,
        dtype=dtype,
        na_values=["MM"],
        keep_default_na=False,
        engine="c",
    )


def _times(frame: pd.DataFrame, fail: Fail) -> np.ndarray:
    """UTC times (datetime64[us]) from the YY MM DD hh mm columns; two-digit years are 19xx.

    Computed with integer arithmetic (days from the civil date, as in H. Hinnant's
    algorithm): pandas' `to_datetime` of a frame of parts took a tenth of a backfill's
    parsing time.
    """
    try:
        parts = {
            c: pd.to_numeric(frame[c], errors="raise").to_numpy().astype("int64")
            for c in TIME_COLUMNS
        }
    except (ValueError, TypeError) as exc:
        raise fail(f"a time column is not a number: {exc}") from None
    year, month, day = parts["YY"], parts["MM"], parts["DD"]
    year = np.where(year > 100, year, year + 1900)
    hour, minute = parts["hh"], parts["mm"]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    invalid = (
        (month < 1) | (month > 12) | (day < 1) | (day > month_days)
        | (hour < 0) | (hour > 23) | (minute < 0) | (minute > 59)
    )  # fmt: skip
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        stamp = " ".join(str(parts[c][row]) for c in TIME_COLUMNS)
        raise fail(f"invalid date in a row: {stamp!r} at data row {row + 1}")
    shifted = year - (month <= 2)
    era = np.floor_divide(shifted, 400)
    year_of_era = shifted - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146_097 + day_of_era - 719_468
    micros = ((days * 24 + hour) * 60 + minute) * 60_000_000
    return micros.astype("datetime64[us]")


_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _values(frame: pd.DataFrame, column: str, fail: Fail) -> np.ndarray:
    """One column as numbers (compass points as degrees), missing-value codes as NaN; the
    first value that is neither a number nor missing is a ParseError."""
    if column in COMPASS_COLUMNS:
        text_values = frame[column].str.strip().str.upper()
        values = text_values.map(COMPASS)
        unknown = values.isna() & text_values.notna()
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise fail(
                f"column {column}: {frame[column].iloc[row]!r} at data row {row + 1} "
                "is not a compass point"
            )
    elif frame[column].dtype == np.float64:  # read as numbers already
        values = frame[column]
    else:
        values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise fail(
            f"column {column}: {frame[column].iloc[row]!r} at data row {row + 1} is not a number"
        )
    array = values.to_numpy(dtype="float64")
    for code in MISSING_CODES.get(column, ()):
        array = np.where(array == code, np.nan, array)
    return array


def _rows(
    station_id: str,
    times: pa.Array,
    z: np.ndarray | None,
    lon: float | None,
    lat: float | None,
    column: str,
    values: np.ndarray,
    units: str,
) -> pa.Table:
    """One column's long rows in SOURCE_SCHEMA; z is NaN where the file gives no depth."""
    n = len(values)
    depth: Any = z if z is not None else np.full(n, np.nan)
    return pa.table(
        {
            "station_id": pa.repeat(pa.scalar(station_id, pa.string()), n),
            "time": times,
            "z": pa.array(depth),
            "lon": pa.repeat(pa.scalar(lon, pa.float64()), n),
            "lat": pa.repeat(pa.scalar(lat, pa.float64()), n),
            "variable": pa.repeat(pa.scalar(column, pa.string()), n),
            "value": pa.array(values, from_pandas=True),
            "units": pa.repeat(pa.scalar(units, pa.string()), n),
            "provider_flag": pa.nulls(n, pa.string()),
        },
        schema=SOURCE_SCHEMA,
    )

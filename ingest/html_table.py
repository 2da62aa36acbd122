"""Tables on a provider's web page (kind `html`), read with pandas `read_html`.

Some providers publish observations only as an HTML table. The registry says which table
(a text it contains, which of the matches, which row is the header) and, as for a `csv`
feed (`ingest.csv_source`), which columns hold time, station and values, and their units.
A page without such a table fails the syntax test, its bytes kept in the raw zone.

    source:
      kind: html
      url: https://www.ndbc.noaa.gov/station_page.php?station=tplm2
      table: {match: PTDY, index: -1, header_row: 1}   # the last table containing "PTDY"
      time_columns: [MM, DD, "TIME (EDT)"]
      time_format: "%m %d %I:%M %p"
      year: fetched          # the table shows no year: the fetch's (a date after it: last year's)
      timezone: "-04:00"
      station: {id: tplm2, lon: -76.436, lat: 38.899}
      station_urn: "urn:ioos:station:wmo:{}"
      missing: ["-"]
    variables:
      - {source: WSPD kts, standard_name: wind_speed, units: kn}
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest.base import Parsed, RawResponse, Request, StationInfo, text_of
from ingest.csv_source import TextFile, TextSpec, frame_rows, stations_in
from ingest.normalize import VariableMapping
from lake.errors import ConfigError, ParseError
from lake.registry import Stream

_YEAR = "__year"


def table_options(stream: Stream) -> dict[str, Any]:
    """The registry's `table: {match, index, header_row}`, checked."""
    table = stream.source.params.get("table") or {}
    if not isinstance(table, dict) or not table.get("match"):
        raise ConfigError(
            "an html source needs table: {match: <text in the table>, index, header_row}",
            stream=stream.id,
            field="source.table",
        )
    return table


def read_table(
    body: bytes, *, stream: Stream, url: str, raw_file: str
) -> tuple[pd.DataFrame, TextSpec]:
    """The page's chosen table as text columns named by its header row, and the spec."""

    def fail(what: str) -> ParseError:
        return ParseError(source=stream.id, url=url, file=raw_file, what=what)

    options = table_options(stream)
    spec = TextSpec.from_params(stream, stream.source.params)
    match = str(options["match"])
    try:
        tables = pd.read_html(io.StringIO(text_of(body)), match=match, flavor="lxml")
    except ValueError as exc:  # lxml/pandas: "No tables found [matching pattern ...]"
        raise fail(f"no table containing {match!r} on the page ({exc})") from None
    index = int(options.get("index", 0))
    if not -len(tables) <= index < len(tables):
        raise fail(f"table {index} of those containing {match!r} asked; the page has {len(tables)}")
    table = tables[index]
    header_row = options.get("header_row")
    if header_row is not None:
        header = [str(c).strip() for c in table.iloc[int(header_row)]]
        table = table.iloc[int(header_row) + 1 :].set_axis(header, axis=1)
    else:
        table = table.set_axis([str(c).strip() for c in table.columns], axis=1)
    # Pages space their cells with no-break spaces ("3:00&nbsp;pm").
    frame = table.astype(str).replace({"nan": ""}).replace("\xa0", " ", regex=True)
    frame = frame.set_axis([c.replace("\xa0", " ") for c in frame.columns], axis=1)
    frame = frame[frame.apply(lambda r: any(v.strip() for v in r), axis=1)]
    if frame.empty:
        raise fail(f"the table containing {match!r} has no data rows")
    return frame.reset_index(drop=True), spec


def with_fetch_year(frame: pd.DataFrame, spec: TextSpec, fetched: datetime) -> TextSpec:
    """For tables that show day and month only: the fetch's year as the first time column
    (in place), and the spec reading it."""
    frame.insert(0, _YEAR, str(fetched.year))
    return TextSpec(
        **{
            **spec.__dict__,
            "time_columns": (_YEAR, *spec.time_columns),
            "time_format": "%Y " + spec.time_format,
        }
    )


class HtmlTable:
    """A table on a web page (kind `html`)."""

    kind: ClassVar[str] = "html"

    def requests(
        self, stream: Stream, since: datetime | None, until: datetime | None
    ) -> list[Request]:
        table_options(stream)  # config errors before fetching
        TextSpec.from_params(stream, stream.source.params)
        if not stream.source.url:
            raise ConfigError("an html source needs url", stream=stream.id, field="source.url")
        return [Request(url=stream.source.url, label="page")]

    def stations(self, stream: Stream) -> list[StationInfo]:
        return TextFile().stations(stream)

    def column_mapping(self, stream: Stream) -> dict[str, VariableMapping]:
        return {}

    def parse(self, stream: Stream, raw: RawResponse, raw_file: str) -> Parsed:
        frame, spec = read_table(raw.body, stream=stream, url=raw.url, raw_file=raw_file)
        year_rule = stream.source.params.get("year")
        if year_rule == "fetched":
            spec = with_fetch_year(frame, spec, raw.fetched_at)
        elif year_rule is not None:
            raise ConfigError(
                f"source.year must be 'fetched', not {year_rule!r}",
                stream=stream.id,
                field="source.year",
            )

        def fail(what: str) -> ParseError:
            return ParseError(source=stream.id, url=raw.url, file=raw_file, what=what)

        rows = frame_rows(frame, spec, fail)
        if year_rule == "fetched":
            rows = _last_year_if_ahead(rows, raw.fetched_at)
        return Parsed(rows=rows, stations=stations_in(rows, stream) if spec.station_column else ())


def _last_year_if_ahead(rows: pa.Table, fetched: datetime) -> pa.Table:
    """A 31 December row read on 1 January got the new year: move rows dated more than a
    day after the fetch back one year."""
    times = rows.column("time")
    limit = pd.Timestamp(fetched)
    limit = limit.tz_localize("UTC") if limit.tzinfo is None else limit.tz_convert("UTC")
    ahead = pc.greater(times, pa.scalar((limit + pd.Timedelta(days=1)).to_pydatetime(), times.type))
    if not pc.any(ahead).as_py():
        return rows
    stamps = pd.Series(times.to_pandas())
    moved = stamps.where(~ahead.to_numpy(zero_copy_only=False), stamps - pd.DateOffset(years=1))
    return rows.set_column(rows.schema.get_field_index("time"), "time", pa.array(moved, times.type))

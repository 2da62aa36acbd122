"""THREDDS catalogs: which OPeNDAP URLs a `catalog.xml` lists, so a grid stream can follow a
THREDDS collection (new files appear in the catalog; each is read through OPeNDAP).

Registry form: `source: {kind: thredds, url: .../catalog.xml, match: "regex", latest: 3}`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

from lake.errors import ParseError

NS = "{http://www.unidata.ucar.edu/namespaces/thredds/InvCatalog/v1.0}"


def _services(root: ET.Element) -> dict[str, tuple[str, str]]:
    """name -> (serviceType lower-case, base), nested compound services included."""
    out: dict[str, tuple[str, str]] = {}
    for svc in root.iter(f"{NS}service"):
        out[svc.get("name", "")] = (svc.get("serviceType", "").lower(), svc.get("base", ""))
    return out


def opendap_urls(
    stream_id: str,
    catalog_url: str,
    body: bytes,
    match: str | None = None,
    latest: int | None = None,
) -> list[str]:
    """OPeNDAP URLs of the datasets in a THREDDS catalog, in catalog order.

    The OPeNDAP service is the catalog's `serviceType="OPENDAP"` service; its base is resolved
    against the catalog URL (bases are usually absolute paths like `/thredds/dodsC/`).
    `match` keeps datasets whose name or urlPath matches the regex; `latest` keeps the last N.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ParseError(
            source=stream_id, url=catalog_url, what=f"not a THREDDS catalog: {exc}"
        ) from None
    dap = [base for kind, base in _services(root).values() if kind == "opendap"]
    if not dap:
        raise ParseError(
            source=stream_id, url=catalog_url, what="the catalog offers no OPENDAP service"
        )
    pattern = re.compile(match) if match else None
    urls = []
    for ds in root.iter(f"{NS}dataset"):
        path = ds.get("urlPath")
        if not path:
            continue
        if pattern and not (pattern.search(path) or pattern.search(ds.get("name", ""))):
            continue
        urls.append(urljoin(catalog_url, dap[0] + path))
    if latest:
        urls = urls[-latest:]
    if not urls:
        raise ParseError(
            source=stream_id,
            url=catalog_url,
            what="no datasets" + (f" matching {match!r}" if match else "") + " in the catalog",
        )
    return urls

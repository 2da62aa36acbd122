"""The one check for a name a client sends that becomes part of a path or a query: a dataset,
grid or layer id. Anything else (slashes, dots, `..`, control characters) is refused before
it can reach the storage, so no request can name a file outside the lake root."""

from __future__ import annotations

import re

from lake.errors import RequestError

#: Dataset ids as the registry allows them (lower-case letters, digits, '-' and '_').
DATASET_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,127}$")


def check_dataset_id(dataset_id: str) -> str:
    """Return `dataset_id` if it is a well-formed id; raise RequestError naming it otherwise."""
    if not isinstance(dataset_id, str) or not DATASET_ID.match(dataset_id):
        raise RequestError(
            f"dataset id {str(dataset_id)[:80]!r} is not valid: use lower-case letters, digits,"
            " '-' and '_' only"
        )
    return dataset_id

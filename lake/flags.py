"""The QARTOD flag vocabulary: the values every `qc_*` column holds and what they mean.

One home for it, because the same numbers reach users through many doors (tabledap columns,
NetCDF files, the metrics page, the QC runner); a second copy would drift.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

PASS: Final = 1
NOT_EVALUATED: Final = 2
SUSPECT: Final = 3
FAIL: Final = 4
MISSING: Final = 9

#: Flag value -> its name in `flag_meanings` (CF wants one word per value, in value order).
FLAG_NAMES: Final[dict[int, str]] = {
    PASS: "pass",
    NOT_EVALUATED: "not_evaluated",
    SUSPECT: "suspect",
    FAIL: "fail",
    MISSING: "missing",
}

#: The CF `flag_meanings` attribute: the names, space-separated, in the order of FLAG_VALUES.
FLAG_MEANINGS: Final = " ".join(FLAG_NAMES.values())


def _read_only(values: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    # A shared array that a caller could change in place would change every file written after.
    values.setflags(write=False)
    return values


#: The CF `flag_values` attribute: int8, the type of the flag columns it describes.
FLAG_VALUES: Final = _read_only(np.array(list(FLAG_NAMES), dtype=np.int8))

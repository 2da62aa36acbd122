"""`qc_agg`: what the tests found, and no more.

QARTOD's precedence (fail over suspect over pass over not evaluated over missing) decides
among the flags, with one rule on top: a value is 1 (pass) only where at least one test
beyond syntax passed it. Syntax is 1 on every stored row, so a stream whose other tests did
not run (no thresholds, or a category that runs none) is 2, not evaluated, never a pass it
was not given. The provider's flag (mapped by `qc.provider_flags`) takes part in the
precedence, so its reject is a fail and its suspect a suspect, but its "good" alone is not
our pass.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ioos_qc import qartod

from lake.flags import NOT_EVALUATED, PASS

#: Tests whose pass says nothing about the value itself.
NO_EVIDENCE = frozenset({"syntax"})


def aggregate(tests: Mapping[str, np.ndarray], provider: np.ndarray | None, n: int) -> np.ndarray:
    """The aggregate flag of `n` values from each test's flags and the provider's."""
    vectors = [np.asarray(v) for v in tests.values()]
    if provider is not None:
        vectors.append(np.asarray(provider))
    if not vectors:
        return np.full(n, NOT_EVALUATED, dtype=np.int8)
    agg = np.asarray(qartod.qartod_compare(vectors), dtype=np.int8)
    evidence = np.zeros(n, dtype=bool)
    for name, flags in tests.items():
        if name not in NO_EVIDENCE:
            evidence |= np.asarray(flags) == PASS
    agg[(agg == PASS) & ~evidence] = NOT_EVALUATED
    return agg

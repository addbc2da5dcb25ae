"""pytest configuration for the nndex Python tests: fixtures, plus the oracle helpers.

The helpers live in oracle_helpers.py next to this file; this directory is put on sys.path so
test modules can `from oracle_helpers import ...` under any pytest import mode.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from oracle_helpers import (  # noqa: E402,F401  (re-exported for convenience)
    SIM_TOL,
    TIE_TOL,
    assert_matches_oracle,
    assert_same_results,
    make_data,
    make_matrix,
    make_queries,
    oracle_scores,
    oracle_topk,
    stable_seed,
)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def rng():
    """A numpy Generator with a fixed seed (fresh per test, so tests are order-independent)."""
    return np.random.default_rng(20240607)


@pytest.fixture
def child_env():
    """Environment for subprocesses: inherits everything except nndex's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNDEX_")}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env

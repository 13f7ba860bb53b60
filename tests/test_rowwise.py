"""Row-wise tests equal NumPy's reductions (synthetic tables: mechanics only)."""

import numpy as np
import pytest

from saltmap.rowwise import finite_rows, rows_differ


@pytest.mark.parametrize("shape", [(0, 3), (7, 0), (50, 1), (1000, 4), (333, 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_rows_equals_numpy(shape, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape).astype(dtype)
    X[rng.random(shape) < 0.05] = np.nan
    X[rng.random(shape) < 0.02] = np.inf
    X[rng.random(shape) < 0.02] = -np.inf
    np.testing.assert_array_equal(finite_rows(X), np.isfinite(X).all(axis=1))


def test_finite_rows_reads_strided_views():
    X = np.arange(40.0).reshape(10, 4)[:, ::2].copy(order="F")
    X[3, 1] = np.nan
    np.testing.assert_array_equal(finite_rows(X), np.isfinite(X).all(axis=1))


@pytest.mark.parametrize("shape", [(0, 2), (5, 0), (400, 1), (400, 6)])
def test_rows_differ_equals_numpy(shape):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, size=shape)
    b = rng.integers(0, 3, size=shape)
    np.testing.assert_array_equal(rows_differ(a, b), (a != b).any(axis=1))


def test_bad_shapes_name_the_shape():
    with pytest.raises(ValueError, match=r"\(5,\)"):
        finite_rows(np.zeros(5))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(3, 2\)"):
        rows_differ(np.zeros((2, 3)), np.zeros((3, 2)))

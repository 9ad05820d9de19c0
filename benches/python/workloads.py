#!/usr/bin/env python3
"""The dask.array and NumPy side of blockarray's side-by-side workload suite.

usage: workloads.py WORKLOAD ENGINE [--data-dir DIR]
       workloads.py list

ENGINE is ``dask`` (dask.array, threaded scheduler, all cores), ``numpy`` (one in-memory
NumPy array) or ``baseline`` (only import what the dask engine imports, to measure the
interpreter's own memory). Input files (``hdf5_sum.h5`` and ``zarr_sum.zarr`` in ``DIR``, by
default ``target/bench``) are written beforehand by ``blockarray-bench setup WORKLOAD``, so
every engine reads the same bytes.

Prints one JSON line ``{"seconds": s, "check": c}``: ``s`` is the wall time from before the
array expression is built until its result is in memory (interpreter start-up and imports are
excluded), ``c`` a statistic of the result that blockarray's ``blockarray-bench`` computes the
same way. Exit status: 0 success, 2 bad usage, 3 the workload does not apply to the engine
(it then prints ``{"missing": "why"}``), 1 the workload failed.

``cargo xtask bench`` runs this script with the virtual environment it creates under
``target/bench-venv``; each repetition is a fresh process.
"""

import json
import os
import sys
import time

SEED = 42
EXIT_USAGE = 2
EXIT_MISSING = 3


class Missing(Exception):
    """The workload does not apply to this engine."""


def _da():
    import dask
    import dask.array as da

    dask.config.set(scheduler="threads")
    return da


def _dask():
    import dask

    dask.config.set(scheduler="threads")
    return dask


def _np():
    import numpy as np

    return np


def mean(a):
    """The mean of the result's elements: the check of random workloads."""
    return float(_np().asarray(a, dtype="f8").mean())


def total(a):
    """The sum of the result's elements: the check of deterministic workloads."""
    return float(_np().asarray(a, dtype="f8").sum())


# --------------------------------------------------------------------------------------------
# Workloads: each engine function builds and computes the result; the check runs untimed.


def ones_sum_dask(_):
    da = _da()
    return da.ones((10000, 10000), chunks=(100, 100)).sum().compute()


def ones_sum_numpy(_):
    np = _np()
    return np.ones((10000, 10000)).sum()


def normal_mean_dask(_):
    da = _da()
    rng = da.random.default_rng(SEED)
    x = rng.normal(10, 0.1, size=(20000, 20000), chunks=(1000, 1000))
    return x.mean(axis=0).compute()


def normal_mean_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).normal(10, 0.1, size=(20000, 20000))
    return x.mean(axis=0)


def xxt_slice_mean_dask(_):
    da = _da()
    x = da.random.default_rng(SEED).random((10000, 10000), chunks=(1000, 1000))
    return (x + x.T)[::2, 5000:].mean(axis=1).compute()


def xxt_slice_mean_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random((10000, 10000))
    return (x + x.T)[::2, 5000:].mean(axis=1)


def fused_chain_dask(_):
    da = _da()
    x = da.random.default_rng(SEED).random((10000, 10000), chunks=(1000, 1000))
    return (da.exp(x) * x.T + 1).mean(axis=0).compute()


def fused_chain_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random((10000, 10000))
    return (np.exp(x) * x.T + 1).mean(axis=0)


def lazy_slice_dask(_):
    da = _da()
    return da.exp(da.ones((10000, 10000), chunks=(100, 100)))[1:100, 1:100].compute()


def lazy_slice_numpy(_):
    np = _np()
    return np.exp(np.ones((10000, 10000)))[1:100, 1:100]


def matmul_dask(_):
    da = _da()
    x = da.random.default_rng(SEED).random((6000, 6000), chunks=(1000, 1000))
    return (x @ x.T).compute()


def matmul_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random((6000, 6000))
    return x @ x.T


def rechunk_sum_dask(_):
    da = _da()
    x = da.random.default_rng(SEED).random((10000, 10000), chunks=(10000, 100))
    return x.rechunk((100, 10000)).sum(axis=1).compute()


def rechunk_sum_numpy(_):
    np = _np()
    return np.random.default_rng(SEED).random((10000, 10000)).sum(axis=1)


def _leaf(i):
    return i


def _add(values):
    return sum(values)


def task_overhead_dask(_):
    """The same tree as dag_core::synthetic::tree(875_000, 8): leaf i returns i, sums of 8."""
    _dask()
    from dask.threaded import get

    graph = {}
    level = []
    for i in range(875_000):
        key = ("leaf", i)
        graph[key] = (_leaf, i)
        level.append(key)
    depth = 0
    while len(level) > 1:
        name = f"sum{depth}"
        nxt = []
        for j in range(0, len(level), 8):
            key = (name, j // 8)
            graph[key] = (_add, level[j : j + 8])
            nxt.append(key)
        level = nxt
        depth += 1
    return get(graph, level[0])


def task_overhead_numpy(_):
    raise Missing("NumPy has no task graphs")


# Workloads whose blockarray feature is still missing: the reference engines are ready.


def _spd_dask(da, n):
    x = da.random.default_rng(SEED).random((n, n), chunks=(1000, 1000))
    return (x + x.T) / 2 + n * da.eye(n, chunks=1000)


def cholesky_dask(_):
    da = _da()
    lower = da.linalg.cholesky(_spd_dask(da, 6000), lower=True)
    return da.diag(lower).compute()


def cholesky_numpy(_):
    np = _np()
    n = 6000
    x = np.random.default_rng(SEED).random((n, n))
    a = (x + x.T) / 2 + n * np.eye(n)
    return np.diag(np.linalg.cholesky(a))


def tsqr_dask(_):
    dask = _dask()
    import dask.array as da

    x = da.random.default_rng(SEED).random((400000, 100), chunks=(20000, 100))
    q, r = da.linalg.tsqr(x)
    q, r = dask.compute(q, r)
    return abs(r.diagonal())


def tsqr_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random((400000, 100))
    _, r = np.linalg.qr(x)
    return np.abs(r.diagonal())


def svd_tall_dask(_):
    dask = _dask()
    import dask.array as da

    x = da.random.default_rng(SEED).random((400000, 100), chunks=(20000, 100))
    u, s, v = da.linalg.svd(x)
    _, s, _ = dask.compute(u, s, v)
    return s[:1]


def svd_tall_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random((400000, 100))
    _, s, _ = np.linalg.svd(x, full_matrices=False)
    return s[:1]


def lu_solve_dask(_):
    da = _da()
    rng = da.random.default_rng(SEED)
    a = rng.random((6000, 6000), chunks=(1000, 1000))
    b = rng.random((6000, 100), chunks=(1000, 100))
    x = da.linalg.solve(a, b).compute()
    return a, x


def lu_solve_numpy(_):
    np = _np()
    rng = np.random.default_rng(SEED)
    a = rng.random((6000, 6000))
    b = rng.random((6000, 100))
    return a, np.linalg.solve(a, b)


def reconstruction_mean(result):
    """The mean of ``a @ x`` for a result ``(a, x)`` of ``solve(a, b)``: the mean of ``b`` when
    ``x`` solves the system (the check of ``lu_solve``; ``a`` is lazy for dask, so this
    recomputes it, after the clock has stopped)."""
    a, x = result
    return mean(a @ x)


def topk_dask(_):
    da = _da()
    x = da.random.default_rng(SEED).random(10**8, chunks=10**6)
    return da.topk(x, 10).compute()


def topk_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random(10**8)
    return np.sort(np.partition(x, -10)[-10:])[::-1]


def percentile_dask(_):
    da = _da()
    x = da.random.default_rng(SEED).random(10**8, chunks=10**6)
    return da.percentile(x, [5, 50, 95]).compute()


def percentile_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random(10**8)
    return np.percentile(x, [5, 50, 95])


def overlap_stencil_dask(_):
    da = _da()
    from scipy import ndimage

    x = da.random.default_rng(SEED).random((8000, 8000), chunks=(1000, 1000))
    y = x.map_overlap(
        lambda b: ndimage.uniform_filter(b, size=3, mode="reflect"),
        depth=1,
        boundary="reflect",
    )
    return y.compute()


def overlap_stencil_numpy(_):
    np = _np()
    from scipy import ndimage

    x = np.random.default_rng(SEED).random((8000, 8000))
    return ndimage.uniform_filter(x, size=3, mode="reflect")


def sort_dask(_):
    raise Missing("dask.array has no sort")


def sort_numpy(_):
    np = _np()
    x = np.random.default_rng(SEED).random(10**8)
    return np.sort(x)


def every_1000th_mean(a):
    """The mean of every 1000th element of the sorted result (the check of `sort`)."""
    return float(_np().asarray(a, dtype="f8")[::1000].mean())


HDF5_CHUNK = 10**6


def _hdf5_path(data_dir):
    return os.path.join(data_dir, "hdf5_sum.h5")


def hdf5_sum_dask(data_dir):
    da = _da()
    import h5py

    with h5py.File(_hdf5_path(data_dir), "r") as f:
        return da.from_array(f["x"], chunks=HDF5_CHUNK).sum().compute()


def hdf5_sum_numpy(data_dir):
    import h5py

    with h5py.File(_hdf5_path(data_dir), "r") as f:
        return f["x"][...].sum()


def _evict(path):
    """Drop ``path``'s pages from the page cache (``posix_fadvise(DONTNEED)`` after an
    ``fdatasync``: no root needed), so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def hdf5_sum_cold_dask(data_dir):
    return hdf5_sum_dask(data_dir)


def hdf5_sum_cold_numpy(data_dir):
    return hdf5_sum_numpy(data_dir)


# name -> what runs before the clock starts (given the data directory)
PREPARE = {"hdf5_sum_cold": lambda data_dir: _evict(_hdf5_path(data_dir))}


def _zarr_path(data_dir):
    return os.path.join(data_dir, "zarr_sum.zarr")


def zarr_sum_dask(data_dir):
    da = _da()

    # In the array's own chunks (10**6), as from_zarr does by default.
    return da.from_zarr(_zarr_path(data_dir), component="x").sum().compute()


def zarr_sum_numpy(data_dir):
    import zarr

    return zarr.open_array(_zarr_path(data_dir), path="x", mode="r")[...].sum()


# name -> check
WORKLOADS = {
    "ones_sum": total,
    "normal_mean": mean,
    "xxt_slice_mean": mean,
    "fused_chain": mean,
    "lazy_slice": total,
    "matmul": mean,
    "rechunk_sum": mean,
    "task_overhead": total,
    "cholesky": mean,
    "tsqr": mean,
    "svd_tall": mean,
    "lu_solve": reconstruction_mean,
    "topk": mean,
    "percentile": total,
    "overlap_stencil": mean,
    "sort": every_1000th_mean,
    "hdf5_sum": total,
    "hdf5_sum_cold": total,
    "zarr_sum": total,
}

ENGINES = ("dask", "numpy", "baseline")


def main(argv):
    args = list(argv)
    data_dir = os.path.join("target", "bench")
    if "--data-dir" in args:
        i = args.index("--data-dir")
        if i + 1 >= len(args):
            print("--data-dir needs a directory", file=sys.stderr)
            return EXIT_USAGE
        data_dir = args[i + 1]
        del args[i : i + 2]
    if args == ["list"]:
        for name in WORKLOADS:
            print(name)
        return 0
    if len(args) != 2 or args[0] not in WORKLOADS or args[1] not in ENGINES:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        if len(args) >= 1 and args[0] not in WORKLOADS:
            print(
                f"unknown workload {args[0]!r}; known workloads: {', '.join(WORKLOADS)}",
                file=sys.stderr,
            )
        if len(args) >= 2 and args[1] not in ENGINES:
            print(f"unknown engine {args[1]!r}; engines: {', '.join(ENGINES)}", file=sys.stderr)
        return EXIT_USAGE
    name, engine = args
    check = WORKLOADS[name]
    if engine == "baseline":
        _da()
        import numpy  # noqa: F401
        import scipy  # noqa: F401

        print(json.dumps({"seconds": 0.0, "check": 0.0}))
        return 0
    func = globals()[f"{name}_{engine}"]
    # Import the engine before the clock starts.
    _da() if engine == "dask" else _np()
    if name in PREPARE:
        PREPARE[name](data_dir)
    try:
        start = time.perf_counter()
        result = func(data_dir)
        seconds = time.perf_counter() - start
    except Missing as e:
        print(json.dumps({"missing": str(e)}))
        return EXIT_MISSING
    print(json.dumps({"seconds": seconds, "check": check(result)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Generate blockarray's NumPy conformance corpus.

Run by hand (CI needs no Python: the output is committed):

    python3 -m venv /tmp/npvenv && /tmp/npvenv/bin/pip install numpy==2.4.6
    /tmp/npvenv/bin/python xtask/conformance/numpy_corpus.py

It writes crates/blockarray/tests/data/numpy_corpus.tsv, read by
crates/blockarray/tests/numpy_conformance.rs. One case per line, tab-separated:

    unary   OP DTYPE IN OUT_DTYPE OUT ULPS
    arange  START DTYPE STOP STEP OUT  (numpy.arange of scalars of DTYPE: exact values)
    binary  OP DTYPE A B OUT_DTYPE OUT ULPS
    error   OP DTYPE A B            (we refuse: an Err when computed; see docs/numpy.md)
    reduce  OP DTYPE SHAPE AXIS DDOF DATA OUT_DTYPE OUT_SHAPE OUT ULPS
    rerror  OP DTYPE SHAPE AXIS DATA (NumPy raises, we give an Err)
    promote A B OUT                  (numpy.result_type of two array dtypes)

Values are comma-separated: integers in decimal, booleans 0/1, floats as the hex of their bits
(so -0.0, NaN and subnormals survive). ULPS is the tolerance in units in the last place: 0 for
operations IEEE or NumPy define exactly, a few for transcendental functions, whose last bit
differs between libm implementations.
"""

import os
import warnings

import numpy as np

warnings.simplefilter("ignore")

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "blockarray", "tests", "data",
                   "numpy_corpus.tsv")

FLOATS = ["float64", "float32"]
INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


def enc(a):
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return ",".join("1" if v else "0" for v in a.ravel())
    if a.dtype == np.float64:
        return ",".join("%016x" % v for v in a.ravel().view(np.uint64))
    if a.dtype == np.float32:
        return ",".join("%08x" % v for v in a.ravel().view(np.uint32))
    return ",".join(str(int(v)) for v in a.ravel())


def float_edges(dt):
    f = np.finfo(dt)
    return np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.0, -3.0, 0.1, 100.0,
                     1e-3, 0.9999, np.nan, np.inf, -np.inf, f.smallest_subnormal,
                     -f.smallest_subnormal, f.tiny, f.max, -f.max, f.eps], dtype=dt)


def float_pair_edges(dt):
    f = np.finfo(dt)
    return np.array([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 3.0, -7.0, np.nan, np.inf, -np.inf,
                     f.smallest_subnormal, f.max], dtype=dt)


def int_edges(dt):
    i = np.iinfo(dt)
    vals = [0, 1, 2, 3, 7, i.max, i.max - 1, i.min]
    if i.min < 0:
        vals += [-1, -2, -7, i.min + 1]
    return np.array(vals, dtype=dt)


# (name, numpy function, ulps); names are NumPy's.
FLOAT_UNARY = [
    ("negative", np.negative, 0), ("absolute", np.absolute, 0), ("sign", np.sign, 0),
    ("square", np.square, 0), ("reciprocal", np.reciprocal, 0), ("sqrt", np.sqrt, 0),
    ("floor", np.floor, 0), ("ceil", np.ceil, 0), ("rint", np.rint, 0), ("trunc", np.trunc, 0),
    ("signbit", np.signbit, 0), ("isnan", np.isnan, 0), ("isinf", np.isinf, 0),
    ("isfinite", np.isfinite, 0), ("nan_to_num", np.nan_to_num, 0),
    ("frexp_mantissa", lambda x: np.frexp(x)[0], 0),
    ("frexp_exponent", lambda x: np.frexp(x)[1].astype(np.int32), 0),
    ("angle", np.angle, 0), ("imag", np.imag, 0), ("deg2rad", np.deg2rad, 1),
    ("rad2deg", np.rad2deg, 0), ("cbrt", np.cbrt, 2), ("exp", np.exp, 4), ("exp2", np.exp2, 4),
    ("expm1", np.expm1, 4), ("log", np.log, 4), ("log2", np.log2, 4), ("log10", np.log10, 4),
    ("log1p", np.log1p, 4), ("sin", np.sin, 4), ("cos", np.cos, 4), ("tan", np.tan, 4),
    ("arcsin", np.arcsin, 4), ("arccos", np.arccos, 4), ("arctan", np.arctan, 4),
    ("sinh", np.sinh, 4), ("cosh", np.cosh, 4), ("tanh", np.tanh, 4),
    ("arcsinh", np.arcsinh, 4), ("arccosh", np.arccosh, 4), ("arctanh", np.arctanh, 4),
    ("clip_nan_low", lambda x: np.clip(x, np.nan, 3.0), 0),
    ("clip_nan_high", lambda x: np.clip(x, 0.0, np.nan), 0),
    ("clip_zero_one", lambda x: np.clip(x, 0.0, 1.0), 0),
    ("clip_negzero_one", lambda x: np.clip(x, -0.0, 1.0), 0),
    ("clip_minus_one_negzero", lambda x: np.clip(x, -1.0, -0.0), 0),
]

FLOAT_BINARY = [
    ("add", np.add, 0), ("subtract", np.subtract, 0), ("multiply", np.multiply, 0),
    ("true_divide", np.true_divide, 0), ("floor_divide", np.floor_divide, 0),
    ("remainder", np.remainder, 0), ("fmod", np.fmod, 0), ("maximum", np.maximum, 0),
    ("minimum", np.minimum, 0), ("fmax", np.fmax, 0), ("fmin", np.fmin, 0),
    ("copysign", np.copysign, 0), ("nextafter", np.nextafter, 0), ("equal", np.equal, 0),
    ("not_equal", np.not_equal, 0), ("less", np.less, 0), ("less_equal", np.less_equal, 0),
    ("greater", np.greater, 0), ("greater_equal", np.greater_equal, 0),
    ("isclose", np.isclose, 0), ("power", np.power, 2), ("arctan2", np.arctan2, 2),
    ("hypot", np.hypot, 1), ("logaddexp", np.logaddexp, 2), ("logaddexp2", np.logaddexp2, 2),
]

INT_UNARY = [
    ("negative", np.negative), ("absolute", np.absolute), ("sign", np.sign),
    ("square", np.square), ("invert", np.invert),
    ("clip_one_seven", lambda x: np.clip(x, 1, 7)),
]

INT_BINARY = [
    ("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
    ("true_divide", np.true_divide), ("floor_divide", np.floor_divide),
    ("remainder", np.remainder), ("fmod", np.fmod), ("bitwise_and", np.bitwise_and),
    ("bitwise_or", np.bitwise_or), ("bitwise_xor", np.bitwise_xor),
    ("left_shift", np.left_shift), ("right_shift", np.right_shift), ("power", np.power),
    ("maximum", np.maximum), ("minimum", np.minimum), ("equal", np.equal), ("less", np.less),
]

# Where we give an Err and NumPy a value with a warning (docs/numpy.md says why).
INT_REFUSED = {"floor_divide": "zero divisor", "remainder": "zero divisor", "fmod": "zero divisor"}


def main():
    lines = []
    all_types = ["bool"] + INTS + FLOATS + ["complex64", "complex128"]
    for a in all_types:
        for b in all_types:
            lines.append(["promote", a, b, str(np.result_type(np.dtype(a), np.dtype(b)))])
    for dt in FLOATS:
        x = float_edges(dt)
        for name, f, ulps in FLOAT_UNARY:
            r = np.asarray(f(x))
            lines.append(["unary", name, dt, enc(x), str(r.dtype), enc(r), str(ulps)])
        e = float_pair_edges(dt)
        a, b = [v.ravel() for v in np.meshgrid(e, e, indexing="ij")]
        for name, f, ulps in FLOAT_BINARY:
            r = np.asarray(f(a, b))
            lines.append(["binary", name, dt, enc(a), enc(b), str(r.dtype), enc(r), str(ulps)])
    for dt in INTS:
        x = int_edges(dt)
        for name, f in INT_UNARY:
            r = np.asarray(f(x))
            lines.append(["unary", name, dt, enc(x), str(r.dtype), enc(r), "0"])
        a, b = [v.ravel() for v in np.meshgrid(x, x, indexing="ij")]
        bits = np.iinfo(dt).bits
        for name, f in INT_BINARY:
            aa, bb = a, b
            if name in ("left_shift", "right_shift"):
                counts = np.array([0, 1, bits - 1, bits, bits + 1] +
                                  ([-1] if np.iinfo(dt).min < 0 else []), dtype=dt)
                aa, bb = [v.ravel() for v in np.meshgrid(x, counts, indexing="ij")]
            if name == "power":
                exps = np.array([0, 1, 2, 3, 7], dtype=dt)
                aa, bb = [v.ravel() for v in np.meshgrid(x, exps, indexing="ij")]
                if np.iinfo(dt).min < 0:
                    lines.append(["error", name, dt, enc(np.array([2], dt)),
                                  enc(np.array([-1], dt))])
            if name in INT_REFUSED:
                keep = bb != 0
                lines.append(["error", name, dt, enc(aa[~keep][:1]), enc(bb[~keep][:1])])
                aa, bb = aa[keep], bb[keep]
            r = np.asarray(f(aa, bb))
            lines.append(["binary", name, dt, enc(aa), enc(bb), str(r.dtype), enc(r), "0"])

    # Float aranges: NumPy's values are start, start + step, then start + i * delta with
    # delta = (start + step) - start, all in the dtype.
    aranges = [(1.0, 2.0, 0.1), (0.0, 1.0, 0.1), (-3.0, 3.0, 0.7), (10.0, 0.0, -1.5),
               (0.5, 100.0, 3.3), (1e10, 1e10 + 100.0, 7.7), (0.1, 0.35, 0.05),
               (-0.0, 1.0, 0.25), (2.0, 2.0, 1.0), (1.0, 1.05, 0.1), (0.3, -0.6, -0.1)]
    for dt in FLOATS:
        t = np.dtype(dt).type
        for a, b, st in aranges:
            r = np.arange(t(a), t(b), t(st), dtype=dt)
            assert r.dtype == np.dtype(dt)
            lines.append(["arange", enc(t(a)), dt, enc(t(b)), enc(t(st)), enc(r)])

    # Reductions: (data, shape) sets per dtype family.
    def red(op, dt, data, shape, axis, ddof=0, ulps=0):
        arr = np.array(data, dtype=dt).reshape(shape)
        kw = {} if axis == "all" else {"axis": axis}
        fn = getattr(np, op)
        try:
            if op in ("var", "std", "nanvar", "nanstd"):
                r = fn(arr, ddof=ddof, **kw)
            elif op in ("cumsum", "cumprod"):
                r = fn(arr, axis=0 if axis == "all" else axis)
            else:
                r = fn(arr, **kw)
        except ValueError:
            lines.append(["rerror", op, dt, ",".join(map(str, shape)), str(axis), enc(arr)])
            return
        r = np.asarray(r)
        lines.append(["reduce", op, dt, ",".join(map(str, shape)), str(axis), str(ddof), enc(arr),
                      str(r.dtype), ",".join(map(str, r.shape)), enc(r), str(ulps)])

    nan, inf = float("nan"), float("inf")
    SUMS = ("sum", "nansum")
    float_sets = [
        ([1, 2, 3, 4], [4]), ([1, nan, 3], [3]), ([inf, 1, -inf], [3]), ([inf, inf, 2], [3]),
        ([], [0]), ([2, 2, 1, 1, 3, 3], [2, 3]), ([nan, nan], [2]), ([-0.0, 0.0, -0.0], [3]),
        ([], [0, 3]), ([5.5], [1]), ([1e308, 1e308, -1e308], [3]), ([0.1] * 10, [10]),
        # Ties between zeros (the last wins), and a cumulative sum whose rounding depends on
        # its order.
        ([0.0, -0.0], [2]), ([-0.0, 0.0], [2]), ([1e16, 1, 1, 1], [4]),
        # A sum that overflows only once two blocks meet.
        ([1e308, 1e308], [2]),
        # inf - inf is NaN in a NaN-ignoring sum too (in one block and across blocks); an f32
        # sum that overflows f32 (mean, var and std are inf there).
        ([inf, -inf], [2]), ([1, inf, -inf], [3]), ([3e38, 3e38], [2]),
    ]
    for dt in FLOATS:
        for data, shape in float_sets:
            axes = ["all"] + list(range(len(shape)))
            for axis in axes:
                for op in ("sum", "prod", "min", "max", "argmin", "argmax", "nansum", "nanmin",
                           "nanmax", "cumsum", "cumprod"):
                    if op.startswith("arg") and axis == "all" and len(shape) > 1:
                        continue
                    if op.startswith("cum") and axis != "all" and len(shape) == 1:
                        continue
                    # A sum over several blocks adds in another order than NumPy's pairwise
                    # loop (exact for short data unless a partial sum rounds); a cumulative
                    # sum runs in NumPy's order and must match exactly.
                    rounds = len(data) >= 8 or (data == [1e16, 1, 1, 1] and op in SUMS)
                    exact = op.startswith("cum")
                    red(op, dt, data, shape, axis, ulps=0 if exact or not rounds else 2)
                for op in ("mean", "nanmean"):
                    red(op, dt, data, shape, axis, ulps=2)
                n = len(data) if axis == "all" else shape[axis]
                for ddof in sorted({0, 1, n, n + 1}):
                    for op in ("var", "std", "nanvar", "nanstd"):
                        red(op, dt, data, shape, axis, ddof=ddof, ulps=4)
    int_sets = [([1, 2, 3, 4], [4]), ([], [0]), ([3, 1, 3, 1], [2, 2]), ([100, 100, 100], [3])]
    for dt in INTS:
        for data, shape in int_sets:
            for axis in ["all"] + list(range(len(shape))):
                for op in ("sum", "prod", "min", "max", "argmin", "argmax", "cumsum", "cumprod"):
                    if op.startswith("arg") and axis == "all" and len(shape) > 1:
                        continue
                    if op.startswith("cum") and axis != "all" and len(shape) == 1:
                        continue
                    red(op, dt, data, shape, axis)

    with open(OUT, "w") as fh:
        fh.write("# Generated by xtask/conformance/numpy_corpus.py with NumPy %s; do not edit.\n"
                 % np.__version__)
        for line in lines:
            fh.write("\t".join(line) + "\n")
    print("wrote %d cases to %s" % (len(lines), os.path.normpath(OUT)))


if __name__ == "__main__":
    main()

"""Write the Zarr fixtures that blockarray-zarr's interop tests read back.

Run by hand (CI has no Python; the output is committed):

    python3 -m venv target/zarr-venv
    target/zarr-venv/bin/pip install zarr==3.1.6 numpy==2.4.6
    target/zarr-venv/bin/python xtask/zarr_fixtures.py

It replaces crates/blockarray-zarr/tests/fixtures/{v2.zarr,v3.zarr,manifest.json}. Every
array holds `value(dtype, flat C-order index)` (the same formulas are in
crates/blockarray-zarr/tests/interop.rs) inside its `written` region and its fill value
elsewhere: the chunks outside that region were never written, so they read as the fill value.
Keep them small: CI clones them on every run.
"""

import json
import shutil
import sys
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    TransposeCodec,
    ZstdCodec,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "blockarray-zarr" / "tests" / "fixtures"


def values(dtype, shape):
    """The elements of a fixture array, by flat C-order index f."""
    f = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    kind = np.dtype(dtype).newbyteorder("=")
    if kind == np.bool_:
        return f % 3 == 0
    if kind.kind == "c":
        return (f * 0.5 + 1j * (1.0 - f * 0.25)).astype(kind)
    if kind.kind == "f":
        return (f * 0.25 - 10.0).astype(kind)
    if kind == np.uint8:
        return ((f * 7) % 256).astype(kind)
    if kind == np.int32:
        return (f * 3 - 500).astype(kind)
    if kind == np.int64:
        return f * 1_000_000_007 - 5
    raise ValueError(dtype)


def json_fill(v):
    if isinstance(v, complex):
        return [v.real, v.imag]
    if isinstance(v, float) and np.isnan(v):
        return "NaN"
    return v


manifest = []


def add(group, fmt, name, dtype, shape, chunks, fill=0, written=None, **kw):
    a = group.create_array(
        name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill, **kw
    )
    data = values(dtype, shape)
    if written is None:
        written = [[0, n] for n in shape]
    if shape == ():
        a[()] = data
    else:
        sel = tuple(slice(lo, hi) for lo, hi in written)
        a[sel] = data[sel]
    manifest.append(
        {
            "store": f"v{fmt}.zarr",
            "array": name,
            "zarr_format": fmt,
            "dtype": np.dtype(dtype).name,
            "shape": list(shape),
            "chunks": list(chunks),
            "shards": list(kw["shards"]) if kw.get("shards") else None,
            "fill": json_fill(fill),
            "written": written,
        }
    )


def main():
    for old in ("v2.zarr", "v3.zarr", "manifest.json"):
        p = OUT / old
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    OUT.mkdir(parents=True, exist_ok=True)

    # Zarr v3.
    g = zarr.open_group(store=str(OUT / "v3.zarr"), mode="w", zarr_format=3)
    z = [ZstdCodec(level=3)]
    add(g, 3, "f64_zstd", "float64", (20, 30), (7, 8), compressors=z)
    add(g, 3, "f32_gzip", "float32", (20, 30), (7, 8), compressors=[GzipCodec(level=5)])
    add(
        g, 3, "i32_blosc", "int32", (20, 30), (7, 8),
        compressors=[BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
    )
    add(
        g, 3, "i64_big_endian", "int64", (20, 30), (7, 8),
        serializer=BytesCodec(endian="big"), compressors=None,
    )
    add(g, 3, "u8_raw", "uint8", (20, 30), (7, 8), compressors=None)
    add(g, 3, "bool_zstd", "bool", (20, 30), (7, 8), fill=False, compressors=z)
    add(g, 3, "c64_zstd", "complex64", (20, 30), (7, 8), compressors=z)
    add(g, 3, "c128_gzip", "complex128", (20, 30), (7, 8), compressors=[GzipCodec(level=1)])
    add(
        g, 3, "f64_transpose", "float64", (20, 30), (7, 8),
        filters=[TransposeCodec(order=(1, 0))], compressors=z,
    )
    add(g, 3, "f64_crc32c", "float64", (20, 30), (7, 8), compressors=[Crc32cCodec()])
    add(g, 3, "f32_3d", "float32", (4, 5, 6), (2, 3, 4), compressors=z)
    add(g, 3, "f64_scalar", "float64", (), (), compressors=z)
    add(g, 3, "f64_sharded", "float64", (20, 30), (5, 8), shards=(10, 16), compressors=z)
    # Shards and inner chunks never written: NaN fill.
    add(
        g, 3, "f64_sharded_missing", "float64", (20, 30), (5, 8), shards=(10, 16),
        fill=float("nan"), written=[[0, 10], [8, 16]], compressors=z,
    )
    add(
        g, 3, "i32_missing", "int32", (20, 30), (7, 8), fill=-7,
        written=[[7, 14], [0, 16]], compressors=z,
    )

    # Zarr v2.
    g = zarr.open_group(store=str(OUT / "v2.zarr"), mode="w", zarr_format=2)
    add(
        g, 2, "f64_blosc", "float64", (20, 30), (7, 8),
        compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
    )
    add(g, 2, "f32_zlib", "float32", (20, 30), (7, 8), compressors=numcodecs.Zlib(level=4))
    add(g, 2, "i32_gzip", "int32", (20, 30), (7, 8), compressors=numcodecs.GZip(level=5))
    add(g, 2, "i64_zstd", "int64", (20, 30), (7, 8), compressors=numcodecs.Zstd(level=3))
    add(g, 2, "i32_big_endian", ">i4", (20, 30), (7, 8), compressors=None)
    add(g, 2, "f64_order_f", "float64", (20, 30), (7, 8), order="F", compressors=numcodecs.Zstd(level=1))
    add(
        g, 2, "f64_nested_keys", "float64", (20, 30), (7, 8),
        chunk_key_encoding={"name": "v2", "separator": "/"}, compressors=numcodecs.Zstd(level=1),
    )
    add(g, 2, "u8_raw", "uint8", (20, 30), (7, 8), compressors=None)
    add(g, 2, "bool_blosc", "bool", (20, 30), (7, 8), fill=False, compressors=numcodecs.Blosc())
    add(g, 2, "c128_zstd", "complex128", (20, 30), (7, 8), compressors=numcodecs.Zstd(level=1))
    add(
        g, 2, "f64_missing", "float64", (20, 30), (7, 8), fill=-1.5,
        written=[[0, 7], [8, 24]], compressors=numcodecs.Zstd(level=1),
    )
    add(g, 2, "f32_3d", "float32", (4, 5, 6), (2, 3, 4), compressors=numcodecs.Zstd(level=1))

    # Stamp the producer, and normalise for byte-stable commits.
    for m in manifest:
        m["fill"] = m["fill"] if not isinstance(m["fill"], np.generic) else m["fill"].item()
    doc = {
        "written_by": f"zarr-python {zarr.__version__}, numcodecs {numcodecs.__version__}, "
        f"NumPy {np.__version__}, Python {sys.version.split()[0]}",
        "arrays": manifest,
    }
    (OUT / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    files = sum(1 for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(manifest)} arrays, {files} files, {total} bytes under {OUT}")


if __name__ == "__main__":
    main()

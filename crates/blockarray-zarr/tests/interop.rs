//! Interoperability with zarr-python.
//!
//! * Arrays written by zarr-python (v2 and v3, every element type, the common codecs,
//!   sharding, missing chunks) by `xtask/zarr_fixtures.py` and committed under
//!   `tests/fixtures` are read back exactly (CI needs no Python).
//! * Arrays written by blockarray are read by zarr-python, where a Python with zarr is at
//!   hand: the bench venv (`target/bench-venv`, made by `cargo xtask bench`) or the
//!   interpreter `ZARR_PYTHON` names; elsewhere the test prints that it was skipped.

mod common;

use blockarray::{BlockArray, ChunkSpec, Element, s};
use blockarray_zarr::{
    ArrayOptions, BloscCompressor, BloscShuffle, Compressor, Endian, ReadOptions, UpdateOptions,
    ZarrElement, ZarrStore, ZarrVersion, array_info, from_zarr, from_zarr_with,
};
use common::TempPath;
use dag_core::Scheduler;
use ndarray::{ArrayD, IxDyn};
use num_complex::Complex;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The element at flat C-order index `f` of every fixture array (xtask/zarr_fixtures.py's
/// `values`).
trait FixtureValue: ZarrElement {
    fn at(f: usize) -> Self;
    fn fill(v: &Value) -> Self;
}

impl FixtureValue for f64 {
    fn at(f: usize) -> f64 {
        f as f64 * 0.25 - 10.0
    }
    fn fill(v: &Value) -> f64 {
        match v {
            Value::String(s) if s == "NaN" => f64::NAN,
            v => v.as_f64().expect("numeric fill"),
        }
    }
}

impl FixtureValue for f32 {
    fn at(f: usize) -> f32 {
        f64::at(f) as f32
    }
    fn fill(v: &Value) -> f32 {
        f64::fill(v) as f32
    }
}

impl FixtureValue for i32 {
    fn at(f: usize) -> i32 {
        f as i32 * 3 - 500
    }
    fn fill(v: &Value) -> i32 {
        v.as_i64().expect("integer fill") as i32
    }
}

impl FixtureValue for i64 {
    fn at(f: usize) -> i64 {
        f as i64 * 1_000_000_007 - 5
    }
    fn fill(v: &Value) -> i64 {
        v.as_i64().expect("integer fill")
    }
}

impl FixtureValue for u8 {
    fn at(f: usize) -> u8 {
        (f * 7 % 256) as u8
    }
    fn fill(v: &Value) -> u8 {
        v.as_u64().expect("integer fill") as u8
    }
}

impl FixtureValue for bool {
    fn at(f: usize) -> bool {
        f.is_multiple_of(3)
    }
    fn fill(v: &Value) -> bool {
        v.as_bool().unwrap_or_else(|| v.as_i64() == Some(1))
    }
}

impl FixtureValue for Complex<f64> {
    fn at(f: usize) -> Complex<f64> {
        Complex::new(f as f64 * 0.5, 1.0 - f as f64 * 0.25)
    }
    fn fill(v: &Value) -> Complex<f64> {
        match v {
            Value::Array(p) => Complex::new(f64::fill(&p[0]), f64::fill(&p[1])),
            v => Complex::new(f64::fill(v), 0.0),
        }
    }
}

impl FixtureValue for Complex<f32> {
    fn at(f: usize) -> Complex<f32> {
        let c = Complex::<f64>::at(f);
        Complex::new(c.re as f32, c.im as f32)
    }
    fn fill(v: &Value) -> Complex<f32> {
        let c = Complex::<f64>::fill(v);
        Complex::new(c.re as f32, c.im as f32)
    }
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer") as usize)
        .collect()
}

/// The whole array a manifest entry describes: values inside `written`, fill elsewhere.
fn expected<T: FixtureValue>(entry: &Value) -> ArrayD<T> {
    let shape = usizes(&entry["shape"]);
    let written: Vec<Vec<usize>> = entry["written"]
        .as_array()
        .expect("written")
        .iter()
        .map(usizes)
        .collect();
    let fill = T::fill(&entry["fill"]);
    let n: usize = shape.iter().product();
    let values = (0..n)
        .map(|f| {
            let mut rest = f;
            let mut inside = true;
            for k in (0..shape.len()).rev() {
                let i = rest % shape[k];
                rest /= shape[k];
                inside &= written[k][0] <= i && i < written[k][1];
            }
            if inside { T::at(f) } else { fill }
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), values).expect("sizes")
}

/// Equal element by element, NaN equal to NaN.
fn same<T: Element>(a: &ArrayD<T>, b: &ArrayD<T>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x == y || (x.is_nan_value() && y.is_nan_value()))
}

fn check_fixture<T: FixtureValue>(entry: &Value) {
    let store = fixtures().join(entry["store"].as_str().expect("store"));
    let name = entry["array"].as_str().expect("array");
    let want = expected::<T>(entry);
    let what = format!("{}/{name}", store.display());
    let info = array_info(&store, name).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        u64::from(info.zarr_format),
        entry["zarr_format"].as_u64().unwrap(),
        "{what}"
    );
    assert_eq!(info.shape, want.shape(), "{what}");
    assert_eq!(info.dtype, T::DTYPE, "{what}");
    match entry["shards"].as_array() {
        Some(_) => {
            assert_eq!(info.chunks, usizes(&entry["shards"]), "{what}");
            assert_eq!(info.inner_chunks, Some(usizes(&entry["chunks"])), "{what}");
        }
        None => {
            assert_eq!(info.chunks, usizes(&entry["chunks"]), "{what}");
            assert_eq!(info.inner_chunks, None, "{what}");
        }
    }
    let scheds: [Box<dyn Scheduler>; 2] = [
        Box::new(SyncScheduler::new()),
        Box::new(ThreadedScheduler::builder().threads(3).build().expect("3")),
    ];
    for sched in &scheds {
        let x = from_zarr::<T>(&store, name).unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = x
            .compute_with(&**sched)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(same(&got, &want), "{what}: got\n{got:?}\nwant\n{want:?}");
        if want.ndim() == 2 {
            // Blocks across stored chunks, and a strided, reversed slice.
            let y = from_zarr_with::<T>(&store, name, &ReadOptions::new().chunks([3, 11]))
                .expect("rechunked");
            let got = y.compute_with(&**sched).expect("rechunked read");
            assert!(same(&got, &want), "{what} in blocks of 3 × 11");
            let part = x
                .slice(s![1..;3, ..;-4])
                .expect("slice")
                .compute_with(&**sched)
                .expect("slice read");
            let want_part = want.slice(ndarray::s![1..;3, ..;-4]).to_owned().into_dyn();
            assert!(same(&part, &want_part), "{what}[1::3, ::-4]");
        }
    }
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

#[test]
fn arrays_written_by_zarr_python_read_back_exactly() {
    let m = manifest();
    let arrays = m["arrays"].as_array().expect("arrays");
    assert!(arrays.len() >= 20, "{} fixture arrays", arrays.len());
    let (mut v2, mut v3) = (0, 0);
    for entry in arrays {
        match entry["dtype"].as_str().expect("dtype") {
            "float64" => check_fixture::<f64>(entry),
            "float32" => check_fixture::<f32>(entry),
            "int32" => check_fixture::<i32>(entry),
            "int64" => check_fixture::<i64>(entry),
            "uint8" => check_fixture::<u8>(entry),
            "bool" => check_fixture::<bool>(entry),
            "complex64" => check_fixture::<Complex<f32>>(entry),
            "complex128" => check_fixture::<Complex<f64>>(entry),
            other => panic!("fixture dtype {other}"),
        }
        match entry["zarr_format"].as_u64() {
            Some(2) => v2 += 1,
            _ => v3 += 1,
        }
    }
    assert!(v2 >= 10 && v3 >= 10, "{v2} v2 and {v3} v3 fixtures");
}

#[test]
fn the_fixtures_say_what_wrote_them() {
    let m = manifest();
    let by = m["written_by"].as_str().expect("written_by");
    assert!(by.starts_with("zarr-python 3."), "{by}");
}

/// The Python to run zarr-python with: `ZARR_PYTHON`, else the bench venv's, if it imports
/// zarr.
fn python_with_zarr() -> Option<PathBuf> {
    let candidates = std::env::var_os("ZARR_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-venv/bin/python"),
        ));
    candidates.into_iter().find(|p| {
        p.exists()
            && Command::new(p)
                .args(["-c", "import zarr, numpy"])
                .output()
                .is_ok_and(|o| o.status.success())
    })
}

/// zarr-python's side: open each array, compare with the fixture formulas, print one line
/// per array.
const PY_CHECK: &str = r#"
import json, sys
import numpy as np
import zarr

def values(dtype, shape):
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
    return f * 1_000_000_007 - 5

store, checks = sys.argv[1], json.loads(sys.argv[2])
for c in checks:
    a = zarr.open_array(store=store, path=c["array"], mode="r")
    want = values(c["dtype"], tuple(c["shape"]))
    if "twice" in c:
        sel = tuple(slice(lo, hi) for lo, hi in c["twice"])
        want = want.copy()
        want[sel] = want[sel] * 2
    got = a[...]
    ok = str(a.dtype) == c["dtype"] and got.shape == want.shape and np.array_equal(got, want)
    print(("ok" if ok else "BAD"), c["array"], a.metadata.zarr_format, a.dtype, a.shape)
"#;

fn fixture_array<T: FixtureValue>(shape: &[usize], blocks: &[usize]) -> BlockArray<T> {
    let n: usize = shape.iter().product();
    let data = ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(T::at).collect()).expect("sizes");
    BlockArray::from_array(data, blocks.to_vec()).expect("array")
}

#[test]
fn zarr_python_reads_what_blockarray_wrote() {
    let Some(python) = python_with_zarr() else {
        println!(
            "skipped: no Python with zarr (run `cargo xtask bench zarr_sum` once to create \
             target/bench-venv, or set ZARR_PYTHON)"
        );
        return;
    };
    let dir = TempPath::new("for-python.zarr");
    let f = fixture_array::<f64>(&[20, 30], &[10, 15]);
    let mut store = ZarrStore::new(&dir);
    store
        .array("f64_default", &f, &ArrayOptions::new())
        .expect("default")
        .array(
            "f64_sharded",
            &f,
            &ArrayOptions::new().chunks([5, 5]).shards([10, 15]),
        )
        .expect("sharded")
        .array(
            "g/f64_transposed_big_gzip",
            &f,
            &ArrayOptions::new()
                .transpose([1, 0])
                .endian(Endian::Big)
                .compressor(Compressor::Gzip(6)),
        )
        .expect("transposed")
        .array(
            "f64_blosc",
            &f,
            &ArrayOptions::new().compressor(Compressor::Blosc {
                cname: BloscCompressor::Zstd,
                clevel: 5,
                shuffle: BloscShuffle::BitShuffle,
            }),
        )
        .expect("blosc")
        .array(
            "i64_raw",
            &fixture_array::<i64>(&[20, 30], &[7, 30]),
            &ArrayOptions::new().compressor(Compressor::None),
        )
        .expect("i64")
        .array(
            "u8_v3",
            &fixture_array::<u8>(&[20, 30], &[20, 30]),
            &ArrayOptions::new(),
        )
        .expect("u8")
        .array(
            "bool_v3",
            &fixture_array::<bool>(&[20, 30], &[5, 30]),
            &ArrayOptions::new(),
        )
        .expect("bool")
        .array(
            "c64_v3",
            &fixture_array::<Complex<f32>>(&[20, 30], &[20, 10]),
            &ArrayOptions::new(),
        )
        .expect("c64")
        .array(
            "c128_v3",
            &fixture_array::<Complex<f64>>(&[20, 30], &[20, 10]),
            &ArrayOptions::new(),
        )
        .expect("c128")
        .array(
            "f32_3d",
            &fixture_array::<f32>(&[4, 5, 6], &[2, 5, 3]),
            &ArrayOptions::new(),
        )
        .expect("f32");
    store.run().expect("v3 run");
    // Zarr v2 in another store (a group of one format).
    let dir2 = TempPath::new("for-python-v2.zarr");
    let v2 = ArrayOptions::new().version(ZarrVersion::V2);
    let mut store = ZarrStore::new(&dir2);
    store
        .array("f64_zstd", &f, &v2)
        .expect("v2 f64")
        .array(
            "i32_blosc_big",
            &fixture_array::<i32>(&[20, 30], &[10, 10]),
            &v2.clone()
                .endian(Endian::Big)
                .compressor(Compressor::Blosc {
                    cname: BloscCompressor::Lz4,
                    clevel: 5,
                    shuffle: BloscShuffle::Shuffle,
                }),
        )
        .expect("v2 i32")
        .array(
            "bool_gzip",
            &fixture_array::<bool>(&[20, 30], &[10, 10]),
            &v2.clone().compressor(Compressor::Gzip(1)),
        )
        .expect("v2 bool")
        .array(
            "c128",
            &fixture_array::<Complex<f64>>(&[20, 30], &[10, 10]),
            &v2,
        )
        .expect("v2 c128");
    store.run().expect("v2 run");
    // A staged region update: the middle doubled.
    let mid = fixture_array::<f64>(&[20, 30], &[10, 15])
        .slice(s![5..15, 10..25])
        .expect("mid");
    let doubled = (&mid * 2.0).rechunk(vec![5, 5]).expect("aligned");
    let mut store = ZarrStore::new(&dir);
    store
        .update(
            "f64_sharded",
            &doubled,
            &UpdateOptions::new().region(vec![5..15, 10..25]),
        )
        .expect_err("blocks of 5 × 5 cut the 10 × 15 shards");
    let doubled = (&mid * 2.0)
        .rechunk(ChunkSpec::Explicit(vec![vec![5, 5], vec![5, 10]]))
        .expect("aligned");
    let mut store = ZarrStore::new(&dir);
    store
        .update(
            "f64_default",
            &doubled,
            &UpdateOptions::new().region(vec![5..15, 10..25]),
        )
        .expect("region of the 10 × 15 chunks");
    store.run().expect("update");

    let v3_checks = serde_json::json!([
        {"array": "f64_default", "dtype": "float64", "shape": [20, 30], "twice": [[5, 15], [10, 25]]},
        {"array": "f64_sharded", "dtype": "float64", "shape": [20, 30]},
        {"array": "g/f64_transposed_big_gzip", "dtype": "float64", "shape": [20, 30]},
        {"array": "f64_blosc", "dtype": "float64", "shape": [20, 30]},
        {"array": "i64_raw", "dtype": "int64", "shape": [20, 30]},
        {"array": "u8_v3", "dtype": "uint8", "shape": [20, 30]},
        {"array": "bool_v3", "dtype": "bool", "shape": [20, 30]},
        {"array": "c64_v3", "dtype": "complex64", "shape": [20, 30]},
        {"array": "c128_v3", "dtype": "complex128", "shape": [20, 30]},
        {"array": "f32_3d", "dtype": "float32", "shape": [4, 5, 6]},
    ]);
    let v2_checks = serde_json::json!([
        {"array": "f64_zstd", "dtype": "float64", "shape": [20, 30]},
        {"array": "i32_blosc_big", "dtype": ">i4", "shape": [20, 30]},
        {"array": "bool_gzip", "dtype": "bool", "shape": [20, 30]},
        {"array": "c128", "dtype": "complex128", "shape": [20, 30]},
    ]);
    for (store, checks) in [(dir.path(), v3_checks), (dir2.path(), v2_checks)] {
        let out = Command::new(&python)
            .arg("-c")
            .arg(PY_CHECK)
            .arg(store)
            .arg(checks.to_string())
            .output()
            .expect("python runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "zarr-python failed:\n{stdout}\n{stderr}"
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            checks.as_array().unwrap().len(),
            "{stdout}\n{stderr}"
        );
        assert!(lines.iter().all(|l| l.starts_with("ok ")), "{stdout}");
        println!("{stdout}");
    }
}

//! Conformance with NumPy as a suite: every case of `tests/data/numpy_corpus.tsv` (generated
//! by NumPy through `xtask/conformance/numpy_corpus.py`, committed, so no Python is needed
//! here) is computed by blockarray — over several blocks, alternating the two schedulers — and
//! compared with NumPy's result: the same element type, the same shape, the same values (bit
//! for bit where NumPy's operation is exact, including signed zeros and NaN; within a few units
//! in the last place for transcendental functions, whose last bit differs between libms).
//!
//! The differences we keep on purpose (an `Err` where NumPy returns a value with a warning)
//! are the corpus's `error` lines; docs/numpy.md lists them with the reasons.

use blockarray::{BlockArray, Element, Float, Integer, Promote, Result};
use dag_core::Scheduler;
use ndarray::{ArrayD, IxDyn};
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;

/// Parse and print values as the corpus encodes them.
trait Code: Element {
    fn decode(s: &str) -> Self;
    fn encode(&self) -> String;
    /// The value's position in the ordered sequence of floats (for ULP distances).
    fn ordinal(&self) -> Option<i64> {
        None
    }
}

macro_rules! int_code {
    ($($t:ty),*) => {$(
        impl Code for $t {
            fn decode(s: &str) -> Self { s.parse().unwrap() }
            fn encode(&self) -> String { self.to_string() }
        }
    )*};
}
int_code!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Code for bool {
    fn decode(s: &str) -> Self {
        s == "1"
    }
    fn encode(&self) -> String {
        if *self { "1" } else { "0" }.into()
    }
}

impl Code for f64 {
    fn decode(s: &str) -> Self {
        f64::from_bits(u64::from_str_radix(s, 16).unwrap())
    }
    fn encode(&self) -> String {
        format!("{:016x}", self.to_bits())
    }
    fn ordinal(&self) -> Option<i64> {
        let b = self.to_bits() as i64;
        Some(if b < 0 { i64::MIN - b } else { b })
    }
}

impl Code for f32 {
    fn decode(s: &str) -> Self {
        f32::from_bits(u32::from_str_radix(s, 16).unwrap())
    }
    fn encode(&self) -> String {
        format!("{:08x}", self.to_bits())
    }
    fn ordinal(&self) -> Option<i64> {
        let b = self.to_bits() as i32;
        Some(i64::from(if b < 0 { i32::MIN - b } else { b }))
    }
}

/// A result as the corpus compares it: dtype, shape, values (with their float ordinals).
struct Out {
    dtype: &'static str,
    shape: Vec<usize>,
    values: Vec<String>,
    ordinals: Vec<Option<i64>>,
    nan: Vec<bool>,
}

fn run<U: Code>(a: Result<BlockArray<U>>, s: &dyn Scheduler) -> Result<Out> {
    let v = a?.compute_with(s)?;
    Ok(Out {
        dtype: U::DTYPE,
        shape: v.shape().to_vec(),
        values: v.iter().map(Code::encode).collect(),
        ordinals: v.iter().map(Code::ordinal).collect(),
        nan: v.iter().map(|x| x.is_nan_value()).collect(),
    })
}

fn arr<T: Code>(s: &str, shape: &[usize]) -> BlockArray<T> {
    let vals: Vec<T> = if s.is_empty() {
        vec![]
    } else {
        s.split(',').map(T::decode).collect()
    };
    // Several blocks per axis, so that every operation crosses block boundaries.
    let chunks: Vec<usize> = shape.iter().map(|&n| n.div_ceil(2).max(1)).collect();
    BlockArray::from_array(ArrayD::from_shape_vec(IxDyn(shape), vals).unwrap(), chunks).unwrap()
}

fn len_of(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        s.split(',').count()
    }
}

fn float_unary<T: Float + Code>(op: &str, x: BlockArray<T>, s: &dyn Scheduler) -> Result<Out> {
    match op {
        "negative" => run(Ok(-&x), s),
        "absolute" => run(Ok(x.abs()), s),
        "sign" => run(Ok(x.sign()), s),
        "square" => run(Ok(x.square()), s),
        "reciprocal" => run(Ok(x.reciprocal()), s),
        "sqrt" => run(Ok(x.sqrt()), s),
        "floor" => run(Ok(x.floor()), s),
        "ceil" => run(Ok(x.ceil()), s),
        "rint" => run(Ok(x.rint()), s),
        "trunc" => run(Ok(x.trunc()), s),
        "signbit" => run(Ok(x.signbit()), s),
        "isnan" => run(Ok(x.isnan()), s),
        "isinf" => run(Ok(x.isinf()), s),
        "isfinite" => run(Ok(x.isfinite()), s),
        "nan_to_num" => run(Ok(x.nan_to_num(None, None, None)), s),
        "frexp_mantissa" => run(Ok(x.frexp().0), s),
        "frexp_exponent" => run(Ok(x.frexp().1), s),
        "angle" => run(Ok(x.angle(false)), s),
        "imag" => run(Ok(x.imag()), s),
        "deg2rad" => run(Ok(x.deg2rad()), s),
        "rad2deg" => run(Ok(x.rad2deg()), s),
        "cbrt" => run(Ok(x.cbrt()), s),
        "exp" => run(Ok(x.exp()), s),
        "exp2" => run(Ok(x.exp2()), s),
        "expm1" => run(Ok(x.expm1()), s),
        "log" => run(Ok(x.log()), s),
        "log2" => run(Ok(x.log2()), s),
        "log10" => run(Ok(x.log10()), s),
        "log1p" => run(Ok(x.log1p()), s),
        "sin" => run(Ok(x.sin()), s),
        "cos" => run(Ok(x.cos()), s),
        "tan" => run(Ok(x.tan()), s),
        "arcsin" => run(Ok(x.asin()), s),
        "arccos" => run(Ok(x.acos()), s),
        "arctan" => run(Ok(x.atan()), s),
        "sinh" => run(Ok(x.sinh()), s),
        "cosh" => run(Ok(x.cosh()), s),
        "tanh" => run(Ok(x.tanh()), s),
        "arcsinh" => run(Ok(x.asinh()), s),
        "arccosh" => run(Ok(x.acosh()), s),
        "arctanh" => run(Ok(x.atanh()), s),
        "clip_nan_low" => run(x.clip(T::nan(), T::from_f64(3.0)), s),
        "clip_nan_high" => run(x.clip(T::zero(), T::nan()), s),
        "clip_zero_one" => run(x.clip(T::zero(), T::one()), s),
        "clip_negzero_one" => run(x.clip(-T::zero(), T::one()), s),
        "clip_minus_one_negzero" => run(x.clip(-T::one(), -T::zero()), s),
        _ => panic!("the corpus has a float ufunc this test does not know: {op}"),
    }
}

fn float_binary<T: Float + Code>(
    op: &str,
    x: BlockArray<T>,
    y: BlockArray<T>,
    s: &dyn Scheduler,
) -> Result<Out> {
    match op {
        "add" => run(&x + &y, s),
        "subtract" => run(&x - &y, s),
        "multiply" => run(&x * &y, s),
        "true_divide" => run(&x / &y, s),
        "floor_divide" => run(x.floor_divide(&y), s),
        "remainder" => run(&x % &y, s),
        "fmod" => run(x.fmod(&y), s),
        "maximum" => run(x.maximum(&y), s),
        "minimum" => run(x.minimum(&y), s),
        "fmax" => run(x.fmax(&y), s),
        "fmin" => run(x.fmin(&y), s),
        "copysign" => run(x.copysign(&y), s),
        "nextafter" => run(x.nextafter(&y), s),
        "equal" => run(x.equal(&y), s),
        "not_equal" => run(x.not_equal(&y), s),
        "less" => run(x.less(&y), s),
        "less_equal" => run(x.less_equal(&y), s),
        "greater" => run(x.greater(&y), s),
        "greater_equal" => run(x.greater_equal(&y), s),
        "isclose" => run(x.isclose(&y, 1e-5, 1e-8, false), s),
        "power" => run(x.powf(&y), s),
        "arctan2" => run(x.atan2(&y), s),
        "hypot" => run(x.hypot(&y), s),
        "logaddexp" => run(x.logaddexp(&y), s),
        "logaddexp2" => run(x.logaddexp2(&y), s),
        _ => panic!("the corpus has a float binary ufunc this test does not know: {op}"),
    }
}

fn int_unary<T: Integer + Code>(op: &str, x: BlockArray<T>, s: &dyn Scheduler) -> Result<Out> {
    match op {
        "negative" => run(Ok(x.negative()), s),
        "absolute" => run(Ok(x.abs()), s),
        "sign" => run(Ok(x.sign()), s),
        "square" => run(Ok(x.square()), s),
        "invert" => run(Ok(!&x), s),
        "clip_one_seven" => {
            let (lo, hi) = (T::from_i128(1).unwrap(), T::from_i128(7).unwrap());
            run(x.clip(lo, hi), s)
        }
        _ => panic!("the corpus has an integer ufunc this test does not know: {op}"),
    }
}

fn int_binary<T: Integer + Code>(
    op: &str,
    x: BlockArray<T>,
    y: BlockArray<T>,
    s: &dyn Scheduler,
) -> Result<Out> {
    match op {
        "add" => run(&x + &y, s),
        "subtract" => run(&x - &y, s),
        "multiply" => run(&x * &y, s),
        "true_divide" => run(&x / &y, s),
        "floor_divide" => run(x.floor_divide(&y), s),
        "remainder" => run(&x % &y, s),
        "fmod" => run(x.fmod(&y), s),
        "bitwise_and" => run(&x & &y, s),
        "bitwise_or" => run(&x | &y, s),
        "bitwise_xor" => run(&x ^ &y, s),
        "left_shift" => run(&x << &y, s),
        "right_shift" => run(&x >> &y, s),
        "power" => run(x.pow(&y), s),
        "maximum" => run(x.maximum(&y), s),
        "minimum" => run(x.minimum(&y), s),
        "equal" => run(x.equal(&y), s),
        "less" => run(x.less(&y), s),
        _ => panic!("the corpus has an integer binary ufunc this test does not know: {op}"),
    }
}

/// The reductions of every numeric type; `float` adds those of the floats.
fn reduction<T: blockarray::Real + Code>(
    op: &str,
    x: BlockArray<T>,
    axis: Option<usize>,
    s: &dyn Scheduler,
) -> Option<Result<Out>>
where
    T::Acc: Code,
{
    let axes = axis.map(|a| vec![a]);
    let axes = axes.as_deref();
    Some(match op {
        "sum" => run(x.sum(axes, false), s),
        "prod" => run(x.prod(axes, false), s),
        "min" => run(x.min(axes, false), s),
        "max" => run(x.max(axes, false), s),
        "argmin" => run(x.argmin(axis), s),
        "argmax" => run(x.argmax(axis), s),
        "cumsum" => run(x.cumsum(axis.unwrap_or(0)), s),
        "cumprod" => run(x.cumprod(axis.unwrap_or(0)), s),
        _ => return None,
    })
}

fn float_reduction<T: Float + Code>(
    op: &str,
    x: BlockArray<T>,
    axis: Option<usize>,
    ddof: f64,
    s: &dyn Scheduler,
) -> Result<Out> {
    let axes = axis.map(|a| vec![a]);
    let axes = axes.as_deref();
    match op {
        "nansum" => run(x.nansum(axes, false), s),
        "nanmin" => run(x.nanmin(axes, false), s),
        "nanmax" => run(x.nanmax(axes, false), s),
        "mean" => run(x.mean(axes, false), s),
        "nanmean" => run(x.nanmean(axes, false), s),
        "var" => run(x.var(axes, ddof, false), s),
        "std" => run(x.std(axes, ddof, false), s),
        "nanvar" => run(x.nanvar(axes, ddof, false), s),
        "nanstd" => run(x.nanstd(axes, ddof, false), s),
        _ => reduction(op, x, axis, s).unwrap_or_else(|| panic!("unknown reduction {op}")),
    }
}

/// Dispatch a case on its dtype: `$f::<T>(...)` for the matching element type.
macro_rules! on_float {
    ($dt:expr, $f:ident ( $($arg:expr),* )) => {
        match $dt {
            "float64" => $f::<f64>($($arg),*),
            "float32" => $f::<f32>($($arg),*),
            _ => None,
        }
    };
}
macro_rules! on_int {
    ($dt:expr, $f:ident ( $($arg:expr),* )) => {
        match $dt {
            "int8" => $f::<i8>($($arg),*),
            "int16" => $f::<i16>($($arg),*),
            "int32" => $f::<i32>($($arg),*),
            "int64" => $f::<i64>($($arg),*),
            "uint8" => $f::<u8>($($arg),*),
            "uint16" => $f::<u16>($($arg),*),
            "uint32" => $f::<u32>($($arg),*),
            "uint64" => $f::<u64>($($arg),*),
            _ => None,
        }
    };
}

fn fu<T: Float + Code>(op: &str, a: &str, s: &dyn Scheduler) -> Option<Result<Out>> {
    Some(float_unary(op, arr::<T>(a, &[len_of(a)]), s))
}
/// `arange(start, stop, step)` in blocks of 3.
fn fa<T: Float + Code>(a: &str, b: &str, st: &str, s: &dyn Scheduler) -> Option<Result<Out>> {
    let (a, b, st) = (T::decode(a), T::decode(b), T::decode(st));
    Some(run(BlockArray::<T>::arange(a, b, st, 3), s))
}
fn fb<T: Float + Code>(op: &str, a: &str, b: &str, s: &dyn Scheduler) -> Option<Result<Out>> {
    let n = [len_of(a)];
    Some(float_binary(op, arr::<T>(a, &n), arr::<T>(b, &n), s))
}
fn iu<T: Integer + Code>(op: &str, a: &str, s: &dyn Scheduler) -> Option<Result<Out>>
where
    T::Acc: Code,
{
    Some(int_unary(op, arr::<T>(a, &[len_of(a)]), s))
}
fn ib<T: Integer + Code>(op: &str, a: &str, b: &str, s: &dyn Scheduler) -> Option<Result<Out>>
where
    T::Acc: Code,
{
    let n = [len_of(a)];
    Some(int_binary(op, arr::<T>(a, &n), arr::<T>(b, &n), s))
}
fn fr<T: Float + Code>(
    op: &str,
    d: &str,
    shape: &[usize],
    axis: Option<usize>,
    ddof: f64,
    s: &dyn Scheduler,
) -> Option<Result<Out>> {
    Some(float_reduction(op, arr::<T>(d, shape), axis, ddof, s))
}
fn ir<T: Integer + Code>(
    op: &str,
    d: &str,
    shape: &[usize],
    axis: Option<usize>,
    _ddof: f64,
    s: &dyn Scheduler,
) -> Option<Result<Out>>
where
    T::Acc: Code,
{
    reduction(op, arr::<T>(d, shape), axis, s)
}

fn shape_of(s: &str) -> Vec<usize> {
    if s.is_empty() {
        vec![]
    } else {
        s.split(',').map(|v| v.parse().unwrap()).collect()
    }
}

/// Compare one result with NumPy's; `None` when equal, else what differs.
fn differs(out: &Out, dtype: &str, shape: &[usize], expected: &str, ulps: i64) -> Option<String> {
    if out.dtype != dtype {
        return Some(format!("dtype {} where NumPy gives {dtype}", out.dtype));
    }
    if out.shape != shape {
        return Some(format!("shape {:?} where NumPy gives {shape:?}", out.shape));
    }
    let want: Vec<&str> = if expected.is_empty() {
        vec![]
    } else {
        expected.split(',').collect()
    };
    for (i, w) in want.iter().enumerate() {
        let got = &out.values[i];
        if got == w {
            continue;
        }
        let ok = match out.ordinals[i] {
            // Floats: any NaN matches NaN; otherwise within `ulps` (bit-equal when 0).
            Some(g) => {
                let wv = match out.dtype {
                    "float64" => Code::ordinal(&f64::decode(w)),
                    _ => Code::ordinal(&f32::decode(w)),
                }
                .unwrap();
                let (w_nan, signs_differ) = match out.dtype {
                    "float64" => {
                        let (gv, wv) = (f64::decode(got), f64::decode(w));
                        (wv.is_nan(), gv.is_sign_negative() != wv.is_sign_negative())
                    }
                    _ => {
                        let (gv, wv) = (f32::decode(got), f32::decode(w));
                        (wv.is_nan(), gv.is_sign_negative() != wv.is_sign_negative())
                    }
                };
                // Both zeros have ordinal 0: a zero of the other sign is a difference.
                let zero_sign = signs_differ && g == 0 && wv == 0;
                (out.nan[i] && w_nan)
                    || (!out.nan[i] && !w_nan && !zero_sign && (g - wv).abs() <= ulps)
            }
            None => false,
        };
        if !ok {
            return Some(format!("element {i}: {got} where NumPy gives {w}"));
        }
    }
    None
}

/// Every pair of element types with the type [`Promote`] gives their operations.
fn promotions() -> Vec<(&'static str, &'static str, &'static str)> {
    macro_rules! table {
        ($($a:ty),*) => { vec![$( table!(@row $a; bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, C32, C64) ),*].concat() };
        (@row $a:ty; $($b:ty),*) => {
            vec![$( (<$a as Element>::DTYPE, <$b as Element>::DTYPE, <<$a as Promote<$b>>::Out as Element>::DTYPE) ),*]
        };
    }
    type C32 = num_complex::Complex<f32>;
    type C64 = num_complex::Complex<f64>;
    table!(
        bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, C32, C64
    )
}

#[test]
fn every_corpus_case_matches_numpy() {
    let corpus = include_str!("data/numpy_corpus.tsv");
    let sync = SyncScheduler::new();
    let threaded = ThreadedScheduler::builder().threads(2).build().unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (n, line) in corpus.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        cases += 1;
        let s: &dyn Scheduler = if n % 2 == 0 { &sync } else { &threaded };
        let f: Vec<&str> = line.split('\t').collect();
        let (kind, op, dt) = (f[0], f[1], f[2]);
        if kind == "promote" {
            let ours = promotions()
                .into_iter()
                .find(|&(a, b, _)| a == op && b == dt);
            let ours = ours.unwrap_or_else(|| panic!("line {}: no promotion {op}, {dt}", n + 1));
            if ours.2 != f[3] {
                failures.push(format!(
                    "line {}: {op} with {dt} promotes to {} where NumPy gives {}",
                    n + 1,
                    ours.2,
                    f[3]
                ));
            }
            continue;
        }
        let (result, want) = match kind {
            "unary" => {
                let r = on_float!(dt, fu(op, f[3], s)).or_else(|| on_int!(dt, iu(op, f[3], s)));
                (r, Some((f[4], vec![len_of(f[3])], f[5], f[6])))
            }
            "binary" | "error" => {
                let r = on_float!(dt, fb(op, f[3], f[4], s))
                    .or_else(|| on_int!(dt, ib(op, f[3], f[4], s)));
                let want = (kind == "binary").then(|| (f[5], vec![len_of(f[3])], f[6], f[7]));
                (r, want)
            }
            "reduce" | "rerror" => {
                let shape = shape_of(f[3]);
                let axis = (f[4] != "all").then(|| f[4].parse::<usize>().unwrap());
                let (ddof, data) = if kind == "reduce" {
                    (f[5].parse::<f64>().unwrap(), f[6])
                } else {
                    (0.0, f[5])
                };
                let r = on_float!(dt, fr(op, data, &shape, axis, ddof, s))
                    .or_else(|| on_int!(dt, ir(op, data, &shape, axis, ddof, s)));
                let want = (kind == "reduce").then(|| (f[7], shape_of(f[8]), f[9], f[10]));
                (r, want)
            }
            "arange" => {
                let r = on_float!(dt, fa(op, f[3], f[4], s));
                (r, Some((dt, vec![len_of(f[5])], f[5], "0")))
            }
            _ => panic!("line {}: unknown case kind {kind}", n + 1),
        };
        let result = result.unwrap_or_else(|| panic!("line {}: unknown dtype {dt}", n + 1));
        match (result, want) {
            (Ok(out), Some((dtype, shape, expected, ulps))) => {
                if let Some(d) = differs(&out, dtype, &shape, expected, ulps.parse().unwrap()) {
                    failures.push(format!("line {} {kind} {op} {dt}: {d}", n + 1));
                }
            }
            (Err(e), Some(_)) => {
                failures.push(format!("line {} {kind} {op} {dt}: Err({e})", n + 1));
            }
            (Ok(_), None) => {
                failures.push(format!(
                    "line {} {kind} {op} {dt}: a value where an Err is expected",
                    n + 1
                ));
            }
            (Err(_), None) => {}
        }
    }
    assert!(cases > 2300, "the corpus lost cases: {cases}");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ from NumPy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

//! Keys name the tasks of a graph, and tokens make those names deterministic.
//!
//! A [`Key`] is a name plus a block index, displayed the way dask shows its keys:
//! `("sum-9f0c2a71d3e4b5a6", 2, 0)`. The name normally ends in a token computed with
//! [`Tokenizer`]: a stable 64-bit hash of the operation and its inputs. The hash is our own
//! (not std's `RandomState`, not `DefaultHasher`, whose algorithm may change between Rust
//! releases), so the same operation on the same inputs gets the same key in every run, in every
//! process and on every machine of the same endianness-independent encoding: all integers are
//! fed in little-endian form.

use smallvec::SmallVec;
use std::fmt;
use std::sync::Arc;

/// The block index part of a key: inline for up to four dimensions.
pub type BlockIndex = SmallVec<[usize; 4]>;

/// The name of a task: a name (usually `op-token`) plus a block index.
///
/// Cloning a key is cheap: the name is shared, the index is stored inline for up to four axes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    name: Arc<str>,
    index: BlockIndex,
}

impl Key {
    /// A key with a name and a block index.
    ///
    /// ```
    /// let k = dag_core::Key::new("ones-ab12", [0, 3]);
    /// assert_eq!(k.to_string(), r#"("ones-ab12", 0, 3)"#);
    /// ```
    pub fn new(name: impl Into<Arc<str>>, index: impl AsRef<[usize]>) -> Key {
        Key {
            name: name.into(),
            index: SmallVec::from_slice(index.as_ref()),
        }
    }

    /// A key with a shared name (no string copy) and a block index.
    pub fn with_shared_name(name: &Arc<str>, index: &[usize]) -> Key {
        Key {
            name: Arc::clone(name),
            index: SmallVec::from_slice(index),
        }
    }

    /// A key with no block index, for scalar results and hand-built graphs.
    ///
    /// ```
    /// assert_eq!(dag_core::Key::scalar("total").to_string(), "total");
    /// ```
    pub fn scalar(name: impl Into<Arc<str>>) -> Key {
        Key {
            name: name.into(),
            index: SmallVec::new(),
        }
    }

    /// The full name, token included.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared name, to build sibling keys without copying the string.
    pub fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The block index (empty for scalar keys).
    pub fn index(&self) -> &[usize] {
        &self.index
    }

    /// The name without its token: `"sum"` for `"sum-9f0c2a71d3e4b5a6"`.
    ///
    /// A name without a `-` is returned whole.
    pub fn prefix(&self) -> &str {
        match self.name.rfind('-') {
            Some(i) if i > 0 => &self.name[..i],
            _ => &self.name,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index.is_empty() {
            return f.write_str(&self.name);
        }
        write!(f, "({:?}", &*self.name)?;
        for i in &self.index {
            write!(f, ", {i}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&str> for Key {
    fn from(name: &str) -> Key {
        Key::scalar(name)
    }
}

impl From<String> for Key {
    fn from(name: String) -> Key {
        Key::scalar(name)
    }
}

/// A stable, deterministic 64-bit hasher for building task names.
///
/// Feed it the operation and everything its result depends on (input names, parameters,
/// shapes); [`Tokenizer::finish_hex`] gives the token. Variable-length inputs are length-prefixed,
/// so `("ab", "c")` and `("a", "bc")` hash differently.
///
/// ```
/// use dag_core::Tokenizer;
/// let mut a = Tokenizer::new();
/// a.write_str("exp").write_u64(7);
/// let mut b = Tokenizer::new();
/// b.write_str("exp").write_u64(7);
/// assert_eq!(a.finish(), b.finish());
/// ```
#[derive(Clone, Debug)]
pub struct Tokenizer {
    a: u64,
    b: u64,
    len: u64,
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// The splitmix64 finaliser: every output bit depends on every input bit.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Tokenizer {
    /// A fresh tokenizer.
    pub fn new() -> Tokenizer {
        Tokenizer {
            a: 0x243F_6A88_85A3_08D3,
            b: 0x1319_8A2E_0370_7344,
            len: 0,
        }
    }

    /// Feed one 64-bit word.
    pub fn write_u64(&mut self, w: u64) -> &mut Self {
        self.a = (self.a ^ w).wrapping_mul(K1).rotate_left(29);
        self.b = (self.b ^ w.rotate_left(32))
            .wrapping_mul(K2)
            .rotate_left(31)
            ^ self.a;
        self.len = self.len.wrapping_add(1);
        self
    }

    /// Feed a signed integer.
    pub fn write_i64(&mut self, v: i64) -> &mut Self {
        self.write_u64(v as u64)
    }

    /// Feed a `usize` (as 64 bits, so 32- and 64-bit platforms agree).
    pub fn write_usize(&mut self, v: usize) -> &mut Self {
        self.write_u64(v as u64)
    }

    /// Feed a float by its bit pattern (so `-0.0` and `0.0` differ, and NaN payloads count).
    pub fn write_f64(&mut self, v: f64) -> &mut Self {
        self.write_u64(v.to_bits())
    }

    /// Feed bytes, length-prefixed.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.write_u64(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(buf));
        }
        self
    }

    /// Feed a string, length-prefixed.
    pub fn write_str(&mut self, s: &str) -> &mut Self {
        self.write_bytes(s.as_bytes())
    }

    /// Feed a key (name and index).
    pub fn write_key(&mut self, key: &Key) -> &mut Self {
        self.write_str(key.name());
        self.write_u64(key.index().len() as u64);
        for &i in key.index() {
            self.write_usize(i);
        }
        self
    }

    /// Feed anything that implements [`Tokenize`].
    pub fn write<T: Tokenize + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.tokenize(self);
        self
    }

    /// The 64-bit token.
    pub fn finish(&self) -> u64 {
        mix(self.a ^ mix(self.b ^ self.len))
    }

    /// The token as 16 lowercase hex digits.
    pub fn finish_hex(&self) -> String {
        format!("{:016x}", self.finish())
    }
}

/// Values that can be fed to a [`Tokenizer`].
pub trait Tokenize {
    /// Feed `self` into the tokenizer.
    fn tokenize(&self, t: &mut Tokenizer);
}

macro_rules! tokenize_int {
    ($($t:ty),*) => {$(
        impl Tokenize for $t {
            fn tokenize(&self, t: &mut Tokenizer) {
                t.write_u64(*self as u64);
            }
        }
    )*};
}
tokenize_int!(
    u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, bool, char
);

impl Tokenize for f32 {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(u64::from(self.to_bits()));
    }
}

impl Tokenize for f64 {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_f64(*self);
    }
}

impl Tokenize for str {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_str(self);
    }
}

impl Tokenize for String {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_str(self);
    }
}

impl Tokenize for Key {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_key(self);
    }
}

impl<T: Tokenize> Tokenize for [T] {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(self.len() as u64);
        for v in self {
            v.tokenize(t);
        }
    }
}

impl<T: Tokenize> Tokenize for Vec<T> {
    fn tokenize(&self, t: &mut Tokenizer) {
        self.as_slice().tokenize(t);
    }
}

impl<T: Tokenize, const N: usize> Tokenize for [T; N] {
    fn tokenize(&self, t: &mut Tokenizer) {
        self.as_slice().tokenize(t);
    }
}

impl<T: Tokenize> Tokenize for Option<T> {
    fn tokenize(&self, t: &mut Tokenizer) {
        match self {
            None => {
                t.write_u64(0);
            }
            Some(v) => {
                t.write_u64(1);
                v.tokenize(t);
            }
        }
    }
}

impl Tokenize for () {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(0);
    }
}

impl<T: Tokenize + ?Sized> Tokenize for &T {
    fn tokenize(&self, t: &mut Tokenizer) {
        (**self).tokenize(t);
    }
}

macro_rules! tokenize_tuple {
    ($($n:ident),+) => {
        impl<$($n: Tokenize),+> Tokenize for ($($n,)+) {
            #[allow(non_snake_case)]
            fn tokenize(&self, t: &mut Tokenizer) {
                let ($($n,)+) = self;
                $($n.tokenize(t);)+
            }
        }
    };
}
tokenize_tuple!(A);
tokenize_tuple!(A, B);
tokenize_tuple!(A, B, C);
tokenize_tuple!(A, B, C, D);
tokenize_tuple!(A, B, C, D, E);
tokenize_tuple!(A, B, C, D, E, F);

/// A task name `"{op}-{token}"` where the token hashes `op` and `inputs`.
///
/// ```
/// let a = dag_core::tokenize("sum", &(3u64, "x"));
/// assert!(a.starts_with("sum-"));
/// assert_eq!(a, dag_core::tokenize("sum", &(3u64, "x")));
/// assert_ne!(a, dag_core::tokenize("sum", &(4u64, "x")));
/// ```
pub fn tokenize<T: Tokenize + ?Sized>(op: &str, inputs: &T) -> String {
    let mut t = Tokenizer::new();
    // The inputs' type too: encodings are prefix-free within a type, not across types
    // (`vec![5usize, 7]` writes what `(2usize, 5usize, 7usize)` writes).
    t.write_str(op).write_str(std::any::type_name::<T>());
    inputs.tokenize(&mut t);
    format!("{op}-{}", t.finish_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_display_matches_dask() {
        assert_eq!(Key::new("x-1", [1, 2]).to_string(), r#"("x-1", 1, 2)"#);
        assert_eq!(Key::scalar("x").to_string(), "x");
        assert_eq!(Key::new("add-ab12", [0]).prefix(), "add");
        assert_eq!(Key::new("-weird", [0]).prefix(), "-weird");
    }

    #[test]
    fn unique_names_tokenize_afresh_pure_names_alike() {
        let u = OpName::unique("f");
        assert_ne!(tokenize("k", &u), tokenize("k", &u.clone()));
        let p = OpName::pure("f", &1u8);
        assert_eq!(tokenize("k", &p), tokenize("k", &p.clone()));
    }

    /// Encodings are prefix-free within a type; the free function and pure names add the
    /// type, so values of different types do not collide by construction.
    #[test]
    fn tokens_of_different_types_differ() {
        assert_ne!(
            tokenize("f", &vec![5usize, 7]),
            tokenize("f", &(2usize, 5usize, 7usize))
        );
        assert_ne!(tokenize("f", "ab"), tokenize("f", &(2u64, 0x6261u64)));
        assert_ne!(tokenize("f", &None::<u64>), tokenize("f", &()));
        assert_ne!(tokenize("f", &-1i32), tokenize("f", &u64::MAX));
        assert_ne!(
            OpName::pure("scale", &2.0f64).token(),
            OpName::pure("scale", &0x4000_0000_0000_0000u64).token()
        );
    }

    #[test]
    fn length_prefix_separates_strings() {
        assert_ne!(tokenize("f", &("ab", "c")), tokenize("f", &("a", "bc")));
        assert_ne!(tokenize("f", &0.0f64), tokenize("f", &-0.0f64));
    }
}

/// The name under which a caller-supplied function appears in task keys, and whether its tasks
/// may be shared.
///
/// A closure's type says nothing about the values it captured: `move |v| v * k` has one type
/// for every `k`. So a function given by a caller is keyed, by default, **uniquely**: every
/// [`OpName`] made from a plain name ([`OpName::unique`], or `From<&str>`) carries a fresh
/// number, and tasks of two calls never share a key whatever their closures capture. Equal
/// keys must mean equal work; a key collision would silently reuse one closure's result for the
/// other's.
///
/// When the caller can vouch for its function — the same name and token always mean the same
/// function — [`OpName::pure`] derives the key from the name and the token (for example the
/// captured parameters), and equal calls share one task, as dask's `pure=True` does.
///
/// A unique name stays unique when cloned: each call it is given to keys its tasks afresh
/// (see its [`Tokenize`] implementation).
///
/// The fresh numbers come from one process-wide counter, so a program that builds the same
/// expressions in the same order gets the same keys in every process (which is what the SPMD
/// schedulers rely on). Those processes agree on the keys, not on what the functions capture:
/// a closure capturing a value that differs between processes (its rank, say) runs with the
/// owning process's value, and no check sees it. Capture the same values everywhere.
///
/// A pure name is all that tells functions apart: closures are not distinguished by their
/// type (its name is not unique: every closure of a function may print the same), so two
/// different closures given one pure name and token share tasks.
///
/// ```
/// use dag_core::OpName;
/// let (a, b) = (OpName::unique("scale"), OpName::unique("scale"));
/// assert_ne!(a.token(), b.token());
/// let (c, d) = (OpName::pure("scale", &2.0f64), OpName::pure("scale", &2.0f64));
/// assert_eq!(c.token(), d.token());
/// assert_ne!(c.token(), OpName::pure("scale", &3.0f64).token());
/// assert_eq!(OpName::from("scale").name(), "scale");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpName {
    name: Arc<str>,
    token: u64,
    pure: bool,
}

static UNIQUE_OPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl OpName {
    /// `name` with a token no other call gets: its tasks are never shared.
    pub fn unique(name: impl Into<Arc<str>>) -> OpName {
        let n = UNIQUE_OPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut t = Tokenizer::new();
        t.write_str("unique").write_u64(n);
        OpName {
            name: name.into(),
            token: t.finish(),
            pure: false,
        }
    }

    /// `name` keyed by `token`: the caller vouches that the same name and token always mean the
    /// same function (feed it every value the function captured), so equal calls share tasks.
    pub fn pure<T: Tokenize + ?Sized>(name: impl Into<Arc<str>>, token: &T) -> OpName {
        let name = name.into();
        let mut t = Tokenizer::new();
        // The token's type too (see `tokenize`): `2.0f64` and its bits as a `u64` differ.
        t.write_str("pure")
            .write_str(&name)
            .write_str(std::any::type_name::<T>())
            .write(token);
        OpName {
            name,
            token: t.finish(),
            pure: true,
        }
    }

    /// The name shown in keys and listings.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token that identifies the function (unique unless made with [`OpName::pure`]).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Whether the name was made with [`OpName::pure`].
    pub fn is_pure(&self) -> bool {
        self.pure
    }
}

/// A pure name writes its name and token. A unique name also writes a fresh number each time
/// it is tokenized, which is once per call that builds an array or a task from it: an
/// `OpName::unique` cloned and given to two calls (with two closures capturing different
/// values, whose types print alike) would otherwise key both calls' tasks alike, and one would
/// silently get the other's results.
impl Tokenize for OpName {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_str(&self.name).write_u64(self.token);
        if !self.pure {
            t.write_u64(UNIQUE_OPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        }
    }
}

impl From<&str> for OpName {
    /// A unique name (see [`OpName::unique`]).
    fn from(name: &str) -> OpName {
        OpName::unique(name)
    }
}

impl From<String> for OpName {
    /// A unique name (see [`OpName::unique`]).
    fn from(name: String) -> OpName {
        OpName::unique(name)
    }
}

impl From<&String> for OpName {
    /// A unique name (see [`OpName::unique`]).
    fn from(name: &String) -> OpName {
        OpName::unique(name.as_str())
    }
}

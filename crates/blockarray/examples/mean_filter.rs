//! The seed documents' overlap example: a 3×3 mean filter over a large 2-d array with
//! `map_overlap`. Each 1000 × 1000 block is extended by one row and column of its neighbours
//! (reflected at the array's edges, as `scipy.ndimage.uniform_filter(mode="reflect")`), filtered,
//! and trimmed back; only the one-element-thick slivers move between blocks.
//!
//! `cargo run --release -p blockarray --example mean_filter [-- N]` (default N = 8000: an
//! N × N array of uniform random numbers).

use blockarray::{BlockArray, Boundary, random::Rng};
use ndarray::{ArrayD, Ix2, IxDyn, s};
use std::time::Instant;

/// The mean of each element's 3×3 neighbourhood, the block's own edges reflected: a horizontal
/// 3-sum per row, then three of those rows added (the inner loops vectorise).
fn mean_filter_3x3(b: &ArrayD<f64>) -> Result<ArrayD<f64>, dag_core::TaskError> {
    let b = b.view().into_dimensionality::<Ix2>()?;
    let (rows, cols) = b.dim();
    if rows == 0 || cols == 0 {
        return Ok(ArrayD::zeros(IxDyn(&[rows, cols])));
    }
    let b = b.as_standard_layout();
    let data = b
        .as_slice()
        .ok_or("a standard-layout block is contiguous")?;
    let hsum = |r: usize, out: &mut [f64]| {
        let row = &data[r * cols..(r + 1) * cols];
        if cols == 1 {
            out[0] = 3.0 * row[0];
            return;
        }
        out[0] = row[0] + row[0] + row[1];
        for ((o, (&l, &m)), &r) in out[1..cols - 1]
            .iter_mut()
            .zip(row.iter().zip(&row[1..]))
            .zip(&row[2..])
        {
            *o = l + m + r;
        }
        out[cols - 1] = row[cols - 2] + row[cols - 1] + row[cols - 1];
    };
    let mut out = Vec::with_capacity(rows * cols);
    let mut h = [vec![0.0; cols], vec![0.0; cols], vec![0.0; cols]];
    hsum(0, &mut h[1]);
    h[0] = h[1].clone();
    hsum(1.min(rows - 1), &mut h[2]);
    for i in 0..rows {
        out.extend(
            h[0].iter()
                .zip(&h[1])
                .zip(&h[2])
                .map(|((&a, &b), &c)| (a + b + c) * (1.0 / 9.0)),
        );
        h.rotate_left(1);
        hsum((i + 2).min(rows - 1), &mut h[2]);
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&[rows, cols]), out)?)
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(8000);
    let t0 = Instant::now();
    let x: BlockArray<f64> = Rng::new(42).random(&[n, n], [1000, 1000])?;
    let y = x.map_overlap(1, Boundary::Reflect, |b: &ArrayD<f64>, _| {
        mean_filter_3x3(b)
    })?;
    println!("x:\n{x}\n\ny = x.map_overlap(mean 3×3, depth 1, reflect):\n{y}\n");
    let out = y.compute()?;
    let secs = t0.elapsed().as_secs_f64();
    // Check against the filter applied to the whole array at once.
    let whole = mean_filter_3x3(&x.compute()?)?;
    let worst = out
        .iter()
        .zip(whole.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    println!(
        "filtered {n} × {n} in {secs:.2} s; mean {:.6} (expect ≈ 0.5); corner {:?}; largest \
         difference from filtering the whole array at once: {worst:.1e}",
        out.mean().unwrap_or(f64::NAN),
        out.slice(s![..2, ..2])
            .into_owned()
            .into_raw_vec_and_offset()
            .0,
    );
    if worst > 1e-12 {
        return Err(format!("blocked and whole-array filters differ by {worst}").into());
    }
    Ok(())
}

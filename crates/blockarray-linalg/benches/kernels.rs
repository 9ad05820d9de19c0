//! Per-block kernels of the blocked algorithms, one task's work each (faer, sequential).
//!
//! ```sh
//! cargo bench -p blockarray-linalg --bench kernels [-- FILTER]
//! ```

use blockarray_linalg::kernels::{self, ColMat, House, Tri};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn random(m: usize, n: usize, seed: u64) -> ColMat<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    ColMat::from_fn(m, n, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn spd(n: usize) -> ColMat<f64> {
    let x = random(n, n, 3);
    ColMat::from_fn(n, n, |i, j| {
        (x.at(i, j) + x.at(j, i)) / 2.0 + if i == j { n as f64 } else { 0.0 }
    })
}

fn tsqr_leaf(c: &mut Criterion) {
    let mut g = c.benchmark_group("tsqr-leaf 20000x100");
    g.sample_size(10);
    let a = random(20_000, 100, 1);
    let rowmajor: Vec<f64> = (0..20_000 * 100).map(|i| a.at(i / 100, i % 100)).collect();
    g.bench_function("copy row-major block to column-major", |b| {
        b.iter(|| {
            black_box(ColMat::copy_of(faer::MatRef::from_row_major_slice(
                &rowmajor, 20_000, 100,
            )))
        })
    });
    g.bench_function("copy row-major block to column-major, in strips", |b| {
        b.iter(|| black_box(ColMat::from_row_major(&rowmajor, 20_000, 100)))
    });
    g.bench_function("factor, one reflector block", |b| {
        b.iter(|| black_box(House::new(a.clone(), true)))
    });
    g.bench_function("factor, faer's block size", |b| {
        b.iter(|| black_box(House::new(a.clone(), false)))
    });
    let h1 = House::new(a.clone(), true);
    let hb = House::new(a.clone(), false);
    let x = random(100, 100, 2);
    g.bench_function("Q·[X; 0], one block (apply_top)", |b| {
        b.iter(|| black_box(h1.apply_top(x.as_ref())))
    });
    g.bench_function("Q·[X; 0], one block, into a row-major block", |b| {
        b.iter(|| black_box(h1.apply_top_block(x.as_ref())))
    });
    g.bench_function("Q·[X; 0], faer's block size", |b| {
        b.iter(|| black_box(hb.apply_top(x.as_ref())))
    });
    g.bench_function("form Q, then Q·X", |b| {
        b.iter(|| black_box(kernels::product(h1.q().as_ref(), x.as_ref())))
    });
    g.finish();
}

fn square_1000(c: &mut Criterion) {
    let mut g = c.benchmark_group("1000x1000 block");
    g.sample_size(10);
    let a = spd(1000);
    let b = random(1000, 1000, 5);
    g.bench_function("cholesky (potrf)", |bch| {
        bch.iter(|| black_box(kernels::cholesky(a.as_ref()).expect("SPD")))
    });
    let l = kernels::cholesky(a.as_ref()).expect("SPD");
    g.bench_function("triangular solve from the right (trsm)", |bch| {
        bch.iter(|| {
            let mut x = b.clone();
            kernels::solve_triangular_right_in_place(
                l.as_ref(),
                Tri::Lower,
                true,
                false,
                x.as_mut(),
            );
            black_box(x)
        })
    });
    g.bench_function("C -= A·Bᴴ (gemm)", |bch| {
        let mut cm = random(1000, 1000, 6);
        bch.iter(|| {
            kernels::gemm(cm.as_mut(), true, b.as_ref(), l.as_ref().transpose(), -1.0);
            black_box(&cm);
        })
    });
    let rowmajor = |m: &ColMat<f64>| -> Vec<f64> {
        (0..m.nrows() * m.ncols())
            .map(|i| m.at(i / m.ncols(), i % m.ncols()))
            .collect()
    };
    let (b_rm, l_rm) = (rowmajor(&b), rowmajor(&l));
    g.bench_function("trsm, row-major operands", |bch| {
        bch.iter(|| {
            let mut x = b_rm.clone();
            let xm = faer::MatMut::from_row_major_slice_mut(&mut x, 1000, 1000);
            let lm = faer::MatRef::from_row_major_slice(&l_rm, 1000, 1000);
            kernels::solve_triangular_right_in_place(lm, Tri::Lower, true, false, xm);
            black_box(x)
        })
    });
    g.bench_function("gemm, row-major operands", |bch| {
        let mut cm = rowmajor(&random(1000, 1000, 6));
        bch.iter(|| {
            let lm = faer::MatRef::from_row_major_slice(&l_rm, 1000, 1000);
            let bm = faer::MatRef::from_row_major_slice(&b_rm, 1000, 1000);
            kernels::gemm(
                faer::MatMut::from_row_major_slice_mut(&mut cm, 1000, 1000),
                true,
                bm,
                lm.transpose(),
                -1.0,
            );
            black_box(&cm);
        })
    });
    g.bench_function("LU with partial pivoting (getrf)", |bch| {
        bch.iter(|| black_box(kernels::lu(b.as_ref())))
    });
    g.bench_function("QR (geqrt)", |bch| {
        bch.iter(|| black_box(House::new(b.clone(), false)))
    });
    g.finish();
}

criterion_group!(benches, tsqr_leaf, square_1000);
criterion_main!(benches);

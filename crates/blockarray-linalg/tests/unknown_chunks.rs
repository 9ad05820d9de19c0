//! Matrices whose chunk sizes depend on values (rows kept by a boolean mask): every
//! decomposition and solve refuses them up front, naming `compute_chunk_sizes`, since its plan
//! places blocks by the sizes; once the sizes are computed, the results are those of the
//! matrix without the dropped rows.

use blockarray::{BlockArray, ErrorKind, Result};
use blockarray_linalg::*;
use ndarray::{Array1, Array2, Axis, array};

/// An 8 × 2 matrix in two row blocks, and the rows a mask keeps (two dropped).
fn masked() -> (BlockArray<f64>, Array2<f64>) {
    let a = array![
        [1., 2.],
        [3., 5.],
        [4., 1.],
        [9., 9.],
        [2., 7.],
        [6., 3.],
        [5., 5.],
        [9., 8.]
    ];
    let keep = [true, true, true, false, true, true, true, false];
    let x = BlockArray::from_array(a.clone(), [4, 2]).unwrap();
    let m = BlockArray::from_array(Array1::from(keep.to_vec()), 4).unwrap();
    let rows: Vec<usize> = (0..8).filter(|&i| keep[i]).collect();
    (x.compress(&m, Some(0)).unwrap(), a.select(Axis(0), &rows))
}

fn refused<T>(r: Result<T>, what: &str) {
    match r {
        Ok(_) => panic!("{what}: accepted a matrix of unknown chunk sizes"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Chunks, "{what}: {e}");
            assert!(e.to_string().contains("compute_chunk_sizes"), "{what}: {e}");
        }
    }
}

#[test]
fn unknown_chunk_sizes_are_refused() {
    let (x, _) = masked();
    assert!(!x.chunks().is_known());
    // An 8 × 8 matrix with two rows dropped: square by its bounds, not by its values.
    let keep = BlockArray::from_array(
        Array1::from(vec![true, true, true, false, true, true, true, false]),
        4,
    )
    .unwrap();
    let eye = BlockArray::from_array(Array2::<f64>::eye(8), [4, 4]).unwrap();
    let square = eye.compress(&keep, Some(0)).unwrap();
    assert!(!square.chunks().is_known());
    refused(qr(&x), "qr");
    refused(qr_r(&x), "qr_r");
    refused(qr_tiled(&x), "qr_tiled");
    refused(tsqr(&x), "tsqr");
    refused(svd(&x), "svd");
    refused(svd_via_qr(&x), "svd_via_qr");
    refused(
        svd_compressed(&x, 1, &SvdCompressed::default()),
        "svd_compressed",
    );
    refused(cholesky(&square, Tri::Lower), "cholesky");
    refused(eigh(&square), "eigh");
    refused(lu(&square), "lu");
    refused(inv(&square), "inv");
    let ones = BlockArray::<f64>::ones(&[8], 4).unwrap();
    refused(solve(&square, &ones), "solve");
    refused(lstsq(&x, &ones), "lstsq");
    // A known matrix with a right-hand side of unknown length (its bound fits).
    let known = BlockArray::from_array(array![[2., 0.], [1., 3.]], [1, 2]).unwrap();
    let all = BlockArray::from_array(Array1::from(vec![true, true]), 1).unwrap();
    let b = BlockArray::from_array(array![1., 2.], 1)
        .unwrap()
        .compress(&all, Some(0))
        .unwrap();
    assert!(!b.chunks().is_known());
    refused(solve(&known, &b), "solve (b)");
    refused(
        solve_triangular(&known, &b, Tri::Lower),
        "solve_triangular (b)",
    );
    refused(lstsq(&known, &b), "lstsq (b)");
    let b = b.compute_chunk_sizes().unwrap();
    let solved = solve(&known, &b).unwrap().compute().unwrap();
    assert_eq!(solved.into_raw_vec_and_offset().0, vec![0.5, 0.5]);
}

#[test]
fn with_their_sizes_computed_they_factor_the_kept_rows() {
    let (x, kept) = masked();
    let x = x.compute_chunk_sizes().unwrap();
    let (q, r) = qr(&x).unwrap();
    assert_eq!(q.shape(), &[6, 2]);
    let (q, r) = (q.compute().unwrap(), r.compute().unwrap());
    let q = q.into_dimensionality::<ndarray::Ix2>().unwrap();
    let r = r.into_dimensionality::<ndarray::Ix2>().unwrap();
    let rebuilt = q.dot(&r);
    assert!(
        rebuilt
            .iter()
            .zip(kept.iter())
            .all(|(a, b)| (a - b).abs() < 1e-12),
        "{rebuilt} vs {kept}"
    );
}

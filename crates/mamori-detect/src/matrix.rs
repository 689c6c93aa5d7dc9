//! A dense, row-major matrix of `f64` features.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Row-major feature matrix: one row per sample, one column per feature.
///
/// Row-major because every model here reads whole samples (a kernel row, a tree path), so a
/// sample's features should sit together in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MatrixRepr", into = "MatrixRepr")]
pub struct Matrix {
    cols: usize,
    data: Vec<f64>,
}

/// The serialised form, checked on the way in so a model file cannot hold a ragged matrix.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixRepr {
    cols: usize,
    data: Vec<f64>,
}

impl TryFrom<MatrixRepr> for Matrix {
    type Error = ModelError;

    fn try_from(r: MatrixRepr) -> Result<Self, ModelError> {
        if r.cols == 0 {
            return Err(ModelError::NoColumns);
        }
        if !r.data.chunks_exact(r.cols).remainder().is_empty() {
            return Err(ModelError::Corrupt(format!(
                "matrix of {} columns holds {} values",
                r.cols,
                r.data.len()
            )));
        }
        Ok(Matrix {
            cols: r.cols,
            data: r.data,
        })
    }
}

impl From<Matrix> for MatrixRepr {
    fn from(m: Matrix) -> Self {
        MatrixRepr {
            cols: m.cols,
            data: m.data,
        }
    }
}

impl Matrix {
    /// An empty matrix of `cols` columns.
    ///
    /// # Panics
    /// If `cols` is 0: a sample without features is a programming error, not bad data.
    pub fn new(cols: usize) -> Self {
        assert!(cols > 0, "a feature matrix needs at least one column");
        Matrix {
            cols,
            data: Vec::new(),
        }
    }

    /// An empty matrix of `cols` columns with room for `rows` rows.
    ///
    /// # Panics
    /// If `cols` is 0.
    pub fn with_capacity(cols: usize, rows: usize) -> Self {
        let mut m = Matrix::new(cols);
        m.data.reserve(rows.saturating_mul(cols));
        m
    }

    /// A matrix from equally long rows; the column count is the first row's length.
    pub fn from_rows(rows: Vec<Vec<f64>>) -> Result<Self, ModelError> {
        let cols = rows.first().map_or(0, Vec::len);
        if cols == 0 {
            return Err(if rows.is_empty() {
                ModelError::Empty
            } else {
                ModelError::NoColumns
            });
        }
        let mut m = Matrix::with_capacity(cols, rows.len());
        for row in &rows {
            m.push_row(row)?;
        }
        Ok(m)
    }

    /// A matrix from `cols`-wide rows laid end to end.
    pub fn from_flat(cols: usize, data: Vec<f64>) -> Result<Self, ModelError> {
        Matrix::try_from(MatrixRepr { cols, data })
    }

    /// Appends one row; it must have exactly [`Matrix::cols`] values.
    pub fn push_row(&mut self, row: &[f64]) -> Result<(), ModelError> {
        if row.len() != self.cols {
            return Err(ModelError::RowLength {
                row: self.rows(),
                expected: self.cols,
                found: row.len(),
            });
        }
        self.data.extend_from_slice(row);
        Ok(())
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.data.len() / self.cols
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= rows()`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Mutable row `i`.
    ///
    /// # Panics
    /// If `i >= rows()`.
    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterator over the rows in order.
    pub fn iter_rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.cols)
    }

    /// All values, row after row.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// A new matrix of the rows at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut m = Matrix::with_capacity(self.cols, indices.len());
        for &i in indices {
            m.data.extend_from_slice(self.row(i));
        }
        m
    }
}

/// f32 matrix product for the neural models (autoencoder, GRU): `C (m×n) = op(A) (m×k) · op(B) (k×n) + beta·C`, all row-major; `ta` means `A` is stored as
/// `k×m`, `tb` that `B` is stored as `n×k`. Lengths are checked, so a bad shape panics instead
/// of reading out of bounds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: &mut [f32],
    beta: f32,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm shape"
    );
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the assert above keeps every index the kernel touches inside the three slices
    // (op(A) is m×k, op(B) k×n and C m×n with the strides chosen for their storage), and `c`
    // does not alias `a` or `b` (it is a distinct `&mut`).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_select_and_errors() {
        let mut m = Matrix::from_rows(vec![vec![1.0, 2.0], vec![3.0, 4.0]]).expect("matrix");
        m.push_row(&[5.0, 6.0]).expect("push");
        assert_eq!((m.rows(), m.cols()), (3, 2));
        assert_eq!(m.row(1), &[3.0, 4.0]);
        let s = m.select_rows(&[2, 0, 2]);
        assert_eq!(s.as_slice(), &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        assert_eq!(
            m.push_row(&[1.0]),
            Err(ModelError::RowLength {
                row: 3,
                expected: 2,
                found: 1
            })
        );
        assert_eq!(Matrix::from_rows(vec![]), Err(ModelError::Empty));
        assert!(matches!(
            Matrix::from_rows(vec![vec![1.0], vec![1.0, 2.0]]),
            Err(ModelError::RowLength { row: 1, .. })
        ));
    }

    #[test]
    fn json_round_trip_rejects_ragged_data() {
        let m = Matrix::from_rows(vec![vec![0.1, -2.5], vec![1e300, 3.0]]).expect("matrix");
        let text = serde_json::to_string(&m).expect("serialise");
        assert_eq!(serde_json::from_str::<Matrix>(&text).expect("parse"), m);
        assert!(serde_json::from_str::<Matrix>(r#"{"cols":2,"data":[1.0,2.0,3.0]}"#).is_err());
        assert!(serde_json::from_str::<Matrix>(r#"{"cols":0,"data":[]}"#).is_err());
    }
}

//! Errors shared by the models over feature rows: [`crate::matrix`], [`crate::scaler`],
//! [`crate::svm`] and [`crate::iforest`].

/// Why a model could not be built from its data and parameters, or a model file is invalid.
///
/// Row and column numbers are 0-based indices into the matrix passed in, so a caller that
/// loaded the matrix from a file can map them back to a line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The training matrix has no rows.
    #[error("no training rows")]
    Empty,
    /// A matrix needs at least one column.
    #[error("a feature matrix needs at least one column")]
    NoColumns,
    /// Supervised training saw only one class.
    #[error("labels contain only the {0} class; both normal and attack rows are needed")]
    OneClass(&'static str),
    /// A value is NaN or infinite.
    #[error("non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// Row index.
        row: usize,
        /// Column index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// Features and labels disagree on the number of rows.
    #[error("{rows} feature rows but {labels} labels")]
    LengthMismatch {
        /// Number of feature rows.
        rows: usize,
        /// Number of labels.
        labels: usize,
    },
    /// A row has the wrong number of columns.
    #[error("row {row} has {found} columns, expected {expected}")]
    RowLength {
        /// Row index.
        row: usize,
        /// Columns the matrix has.
        expected: usize,
        /// Columns the row has.
        found: usize,
    },
    /// A parameter is out of range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        /// Parameter name as spelled in the params struct.
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// What the valid range is.
        reason: &'static str,
    },
    /// Stratified cross-validation needs each class in every fold.
    #[error("the {class} class has {count} rows, fewer than the {folds} folds")]
    TooFewPerClass {
        /// `"normal"` or `"attack"`.
        class: &'static str,
        /// Rows of that class.
        count: usize,
        /// Folds requested.
        folds: usize,
    },
    /// A stored model is internally inconsistent (a hand-edited or truncated model file).
    #[error("invalid model: {0}")]
    Corrupt(String),
}

/// Checks that every value of `m` is finite, naming the first one that is not.
pub(crate) fn check_finite(m: &crate::matrix::Matrix) -> Result<(), ModelError> {
    for r in 0..m.rows() {
        if let Some(col) = m.row(r).iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                row: r,
                col,
                value: m.row(r)[col],
            });
        }
    }
    Ok(())
}

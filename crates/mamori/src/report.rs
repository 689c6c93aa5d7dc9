//! Plain-text tables for people.

/// A table with a header row, columns padded to their widest cell.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (i, r) in self.rows.iter().enumerate() {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(c, s)| format!("{s:<w$}", w = width[c]))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                let rule: Vec<String> = width.iter().map(|&w| "-".repeat(w)).collect();
                out.push_str(&rule.join("  "));
                out.push('\n');
            }
        }
        out
    }
}

/// A score with a sensible number of digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.01..100_000.0).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// `mean ± sd` of values scaled by `k`, or just the value when there is one.
pub fn mean_sd(values: &[f64], digits: usize, k: f64) -> String {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return format!("{:.digits$}", mean * k);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    format!("{:.digits$} ± {:.digits$}", mean * k, var.sqrt() * k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_stats_format() {
        let mut t = Table::new(&["a", "bbb"]);
        t.row(vec!["xxxx".into(), "y".into()]);
        assert_eq!(t.render(), "a     bbb\n----  ---\nxxxx  y\n");
        assert_eq!(mean_sd(&[0.5], 1, 100.0), "50.0");
        assert_eq!(mean_sd(&[1.0, 3.0], 2, 1.0), "2.00 ± 1.41");
        assert_eq!(num(65.0), "65.000");
        assert_eq!(num(1e-5), "1.000e-5");
    }
}

//! `unmix inspect`: can this library's phases be told apart, and in `f32`?
//!
//! All numbers come from the kernel's [`library_diagnostics`]: singular values of the
//! library as given and column-scaled (unit-norm phases, which is what the fit solves), their
//! condition numbers and numerical ranks, the cosines between phases, and its warnings. This
//! module only names the phases and lays the results out as text or JSON.

use serde_json::{Value, json};
use unmix::svd::SvdError;
use unmix::svd::diagnostics::{Diagnostics, Warning, library_diagnostics};

use crate::formats::Library;

/// Phase pairs at least this similar (`|cos|`) are listed; the kernel warns from
/// [`unmix::svd::diagnostics::COLLINEAR_COSINE`].
pub const SIMILAR_COSINE: f64 = 0.9;

/// A library's diagnostics with its phase names.
#[derive(Clone, Debug)]
pub struct Report {
    /// The library file.
    pub path: String,
    /// Phase names.
    pub names: Vec<String>,
    /// The kernel's findings.
    pub diagnostics: Diagnostics,
}

/// Diagnoses `library` with the kernel.
///
/// # Errors
/// The kernel's [`SvdError`] (too many phases, a non-finite value, no convergence) as text
/// naming the file.
pub fn inspect(library: &Library) -> Result<Report, String> {
    let d =
        library_diagnostics(&library.data, library.channels(), library.phases()).map_err(|e| {
            let what = match e {
                SvdError::TooLarge { .. } => format!(
                    "{} phases: inspect handles at most {}",
                    library.phases(),
                    unmix::svd::diagnostics::MAX_PHASES
                ),
                SvdError::NonFinite { row, col } => {
                    format!("channel {row} of phase {col} is not finite")
                }
                other => format!("{other:?}"),
            };
            format!("{}: {what}", library.path.display())
        })?;

    Ok(Report {
        path: library.path.display().to_string(),
        names: library.names.clone(),
        diagnostics: d,
    })
}

impl Report {
    /// Singular values of the library as given, descending.
    pub fn singular_values(&self) -> &[f64] {
        &self.diagnostics.singular_values[..self.names.len()]
    }

    /// Singular values of the column-scaled library, descending.
    pub fn scaled_singular_values(&self) -> &[f64] {
        &self.diagnostics.scaled_singular_values[..self.names.len()]
    }

    /// Phase pairs with `|cos| >= SIMILAR_COSINE`, most similar first.
    pub fn similar_pairs(&self) -> Vec<(usize, usize, f64)> {
        let k = self.names.len();
        let mut pairs = Vec::new();
        for a in 0..k {
            for b in a + 1..k {
                let c = self.diagnostics.cosines[a][b];
                if c.abs() >= SIMILAR_COSINE {
                    pairs.push((a, b, c));
                }
            }
        }
        pairs.sort_by(|x, y| y.2.abs().total_cmp(&x.2.abs()));
        pairs
    }

    /// One line per warning, naming the phases, with the kernel's explanation.
    pub fn warnings(&self) -> Vec<String> {
        self.diagnostics
            .warnings()
            .iter()
            .map(|w| {
                let what = match *w {
                    Warning::ZeroColumn { phase } => {
                        format!("phase \"{}\" is zero everywhere", self.names[phase])
                    }
                    Warning::NearlyCollinear { a, b, cosine } => format!(
                        "phases \"{}\" and \"{}\" are nearly collinear (cosine {cosine:.5})",
                        self.names[a], self.names[b]
                    ),
                    Warning::IllConditioned { condition } => format!(
                        "condition number {condition:.3e} of the unit-column library is too \
                         large for f32"
                    ),
                    Warning::RankDeficient { rank } => format!(
                        "numerical rank {rank} is below the {} phases",
                        self.names.len()
                    ),
                    _ => format!("{w:?}"),
                };
                format!("{what}: {}", w.description())
            })
            .collect()
    }

    /// The report as one JSON object. Infinite condition numbers are `null`.
    pub fn to_json(&self) -> Value {
        let d = &self.diagnostics;
        let number = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        let pairs: Vec<Value> = self
            .similar_pairs()
            .into_iter()
            .map(|(a, b, c)| json!({"a": self.names[a], "b": self.names[b], "cosine": c}))
            .collect();

        json!({
            "library": self.path,
            "channels": d.channels,
            "phases": self.names,
            "singular_values": self.singular_values(),
            "condition_number": number(d.condition),
            "rank": d.rank,
            "scaled": {
                "singular_values": self.scaled_singular_values(),
                "condition_number": number(d.scaled_condition),
                "rank": d.scaled_rank,
            },
            "column_norms": &d.column_norms[..self.names.len()],
            "similar_pairs": pairs,
            "warnings": self.warnings(),
        })
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let d = &self.diagnostics;
        let k = self.names.len();
        let list = |v: &[f64]| {
            v.iter()
                .map(|s| format!("{s:.4e}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let cond = |c: f64| {
            if c.is_finite() {
                format!("{c:.4e}")
            } else {
                "infinite".into()
            }
        };

        let mut t = String::new();
        t += &format!(
            "library {}: {} channels, {k} phases\n",
            self.path, d.channels
        );
        t += &format!("  phases: {}\n\n", self.names.join(", "));
        t += "singular values\n";
        t += &format!("  as given:      {}\n", list(self.singular_values()));
        t += &format!(
            "  unit columns:  {}\n\n",
            list(self.scaled_singular_values())
        );
        t += "condition number\n";
        t += &format!("  as given:      {}\n", cond(d.condition));
        t += &format!(
            "  unit columns:  {}  (what the fit solves)\n\n",
            cond(d.scaled_condition)
        );
        t += &format!(
            "rank: {} of {k} as given, {} of {k} with unit columns\n\n",
            d.rank, d.scaled_rank
        );

        let pairs = self.similar_pairs();
        if pairs.is_empty() {
            t += &format!("similar phase pairs: none with |cosine| >= {SIMILAR_COSINE}\n\n");
        } else {
            t += "similar phase pairs (cosine)\n";
            for (a, b, c) in pairs {
                t += &format!("  {} / {}: {c:.5}\n", self.names[a], self.names[b]);
            }
            t += "\n";
        }

        let warnings = self.warnings();
        if warnings.is_empty() {
            t += "warnings: none\n";
        } else {
            t += "warnings\n";
            for w in warnings {
                t += &format!("  - {w}\n");
            }
        }
        t
    }
}

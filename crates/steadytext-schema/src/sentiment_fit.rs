//! Fitting a sentiment calibration from labelled examples, and scoring a classifier on them.
//!
//! The pieces `steadytext calibrate sentiment` and `examples/sentiment_eval.rs` share:
//! [`Metrics`] (accuracy, macro-F1, confusion), [`fit_linear`] (a multinomial logistic
//! regression on standardised features, deterministic: full-batch gradient descent in a fixed
//! order for a fixed number of steps), [`fit_bias`] (one bias per class on top of fixed
//! features: the smallest calibration there is) and [`cross_validate`] (k folds by position).
//!
//! Classes are indexed as [`Polarity::index`](crate::Polarity::index): positive 0, neutral 1, negative 2.
//!
//! ```
//! use steadytext_schema::sentiment_fit::{fit_bias, Metrics};
//!
//! // Label scores that favour class 0 too much; a bias per class fixes it.
//! let x = vec![vec![0.0, -1.0, -2.0], vec![0.0, -0.5, -3.0], vec![0.0, -3.0, -0.2]];
//! let y = vec![0, 1, 2];
//! let bias = fit_bias(&x, &y, 0.0);
//! let pred: Vec<usize> = x.iter().map(|r| bias.predict(r)).collect();
//! assert_eq!(Metrics::new(&y, &pred).accuracy, 1.0);
//! ```

use serde::{Deserialize, Serialize};

/// Number of polarity classes.
pub const CLASSES: usize = 3;

/// Quality of predictions against the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Examples scored.
    pub n: usize,
    /// Share right.
    pub accuracy: f64,
    /// Mean over the three classes of F1 (a class never predicted nor present counts 0).
    pub macro_f1: f64,
    /// `confusion[truth][predicted]`, classes in [`Polarity::index`](crate::Polarity::index) order.
    pub confusion: [[usize; CLASSES]; CLASSES],
}

impl Metrics {
    /// Score `pred` against `truth` (class indices; equal lengths).
    pub fn new(truth: &[usize], pred: &[usize]) -> Self {
        let mut m = [[0usize; CLASSES]; CLASSES];
        for (&t, &p) in truth.iter().zip(pred) {
            m[t][p] += 1;
        }
        let n = truth.len().min(pred.len());
        let right: usize = (0..CLASSES).map(|i| m[i][i]).sum();
        let f1 = (0..CLASSES)
            .map(|c| {
                let tp = m[c][c] as f64;
                let fp: f64 = (0..CLASSES)
                    .filter(|&t| t != c)
                    .map(|t| m[t][c] as f64)
                    .sum();
                let fneg: f64 = (0..CLASSES)
                    .filter(|&p| p != c)
                    .map(|p| m[c][p] as f64)
                    .sum();
                if tp == 0.0 {
                    0.0
                } else {
                    2.0 * tp / (2.0 * tp + fp + fneg)
                }
            })
            .sum::<f64>()
            / CLASSES as f64;
        Self {
            n,
            accuracy: right as f64 / n.max(1) as f64,
            macro_f1: f1,
            confusion: m,
        }
    }

    /// The majority class of `truth` (ties to the lower index) and its metrics.
    pub fn majority(truth: &[usize]) -> (usize, Self) {
        let class = (0..CLASSES)
            .max_by_key(|&c| {
                (
                    truth.iter().filter(|&&t| t == c).count(),
                    std::cmp::Reverse(c),
                )
            })
            .unwrap_or(0);
        (class, Self::new(truth, &vec![class; truth.len()]))
    }
}

/// A linear map from features to class logits: standardise, then `x · weights + bias`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Feature means (subtracted first).
    pub mean: Vec<f64>,
    /// Feature standard deviations (divided by next).
    pub std: Vec<f64>,
    /// One row of three weights per feature.
    pub weights: Vec<[f64; CLASSES]>,
    /// One bias per class.
    pub bias: [f64; CLASSES],
}

impl Linear {
    /// The identity on three label scores plus `bias`: class `k`'s logit is `x[k] + bias[k]`.
    pub fn identity_plus(bias: [f64; CLASSES]) -> Self {
        let mut weights = vec![[0.0; CLASSES]; CLASSES];
        for (k, row) in weights.iter_mut().enumerate() {
            row[k] = 1.0;
        }
        Self {
            mean: vec![0.0; CLASSES],
            std: vec![1.0; CLASSES],
            weights,
            bias,
        }
    }

    /// Class logits of one feature vector (features beyond the map's are ignored).
    pub fn logits(&self, x: &[f64]) -> [f64; CLASSES] {
        let mut z = self.bias;
        for (j, &v) in x.iter().enumerate().take(self.weights.len()) {
            let s = (v - self.mean[j]) / self.std[j];
            for (k, zk) in z.iter_mut().enumerate() {
                *zk += s * self.weights[j][k];
            }
        }
        z
    }

    /// Class probabilities (softmax of the logits).
    pub fn probabilities(&self, x: &[f64]) -> [f64; CLASSES] {
        softmax(self.logits(x))
    }

    /// The most likely class (ties to the lower index).
    pub fn predict(&self, x: &[f64]) -> usize {
        argmax(self.logits(x))
    }
}

/// Softmax of three logits.
pub fn softmax(z: [f64; CLASSES]) -> [f64; CLASSES] {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = z.map(|v| (v - m).exp());
    let s: f64 = e.iter().sum();
    e.map(|v| v / s)
}

/// Index of the largest value (ties to the lower index; NaN never wins).
pub fn argmax(z: [f64; CLASSES]) -> usize {
    let mut best = 0;
    for k in 1..CLASSES {
        if z[k] > z[best] {
            best = k;
        }
    }
    best
}

const STEPS: usize = 4000;
const LEARNING_RATE: f64 = 0.1;

/// Class weights that make every class count equally (`n / (classes present · count)`), so a
/// rare class (neutral, in most review sets) is not fitted away.
fn class_weights(y: &[usize]) -> [f64; CLASSES] {
    let mut count = [0usize; CLASSES];
    for &t in y {
        count[t] += 1;
    }
    let present = count.iter().filter(|&&c| c > 0).count().max(1) as f64;
    count.map(|c| {
        if c == 0 {
            0.0
        } else {
            y.len() as f64 / (present * c as f64)
        }
    })
}

/// Fit a multinomial logistic regression on standardised features (L2 `l2` on the weights,
/// classes weighted equally). Deterministic.
///
/// # Panics
/// If `x` is empty or `x` and `y` differ in length.
pub fn fit_linear(x: &[Vec<f64>], y: &[usize], l2: f64) -> Linear {
    assert!(!x.is_empty() && x.len() == y.len(), "fit on labelled rows");
    let d = x[0].len();
    let n = x.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let std: Vec<f64> = (0..d)
        .map(|j| {
            (x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-6)
        })
        .collect();
    let xs: Vec<Vec<f64>> = x
        .iter()
        .map(|r| (0..d).map(|j| (r[j] - mean[j]) / std[j]).collect())
        .collect();
    let cw = class_weights(y);
    let mut w = vec![[0f64; CLASSES]; d];
    let mut b = [0f64; CLASSES];
    for _ in 0..STEPS {
        let mut gw = vec![[0f64; CLASSES]; d];
        let mut gb = [0f64; CLASSES];
        for (r, &t) in xs.iter().zip(y) {
            let mut z = b;
            for j in 0..d {
                for k in 0..CLASSES {
                    z[k] += r[j] * w[j][k];
                }
            }
            let p = softmax(z);
            for k in 0..CLASSES {
                let g = cw[t] * (p[k] - if k == t { 1.0 } else { 0.0 });
                gb[k] += g;
                for j in 0..d {
                    gw[j][k] += g * r[j];
                }
            }
        }
        for k in 0..CLASSES {
            b[k] -= LEARNING_RATE * gb[k] / n;
            for j in 0..d {
                w[j][k] -= LEARNING_RATE * (gw[j][k] + l2 * w[j][k]) / n;
            }
        }
    }
    Linear {
        mean,
        std,
        weights: w,
        bias: b,
    }
}

/// Fit one bias per class on top of the first three features taken as class logits (classes
/// weighted equally, L2 `l2` on the biases). Deterministic.
///
/// # Panics
/// If `x` is empty, a row has fewer than three features, or `x` and `y` differ in length.
pub fn fit_bias(x: &[Vec<f64>], y: &[usize], l2: f64) -> Linear {
    assert!(!x.is_empty() && x.len() == y.len(), "fit on labelled rows");
    let n = x.len() as f64;
    let cw = class_weights(y);
    let mut b = [0f64; CLASSES];
    for _ in 0..STEPS {
        let mut gb = [0f64; CLASSES];
        for (r, &t) in x.iter().zip(y) {
            let z = [r[0] + b[0], r[1] + b[1], r[2] + b[2]];
            let p = softmax(z);
            for k in 0..CLASSES {
                gb[k] += cw[t] * (p[k] - if k == t { 1.0 } else { 0.0 });
            }
        }
        for k in 0..CLASSES {
            b[k] -= LEARNING_RATE * 10.0 * (gb[k] + l2 * b[k]) / n;
        }
    }
    // Only differences between biases matter: centre them.
    let m = b.iter().sum::<f64>() / CLASSES as f64;
    Linear::identity_plus(b.map(|v| v - m))
}

/// Cross-validated metrics of a fitting procedure: `folds` folds by position (row `i` is in
/// fold `i % folds`), each fold predicted by a fit on the others.
///
/// # Panics
/// If `folds < 2` or there are fewer rows than folds.
pub fn cross_validate(
    x: &[Vec<f64>],
    y: &[usize],
    folds: usize,
    fit: impl Fn(&[Vec<f64>], &[usize]) -> Linear,
) -> Metrics {
    assert!(folds >= 2 && x.len() >= folds, "at least two folds of data");
    let mut pred = vec![0usize; x.len()];
    for f in 0..folds {
        let (tx, ty): (Vec<Vec<f64>>, Vec<usize>) = x
            .iter()
            .zip(y)
            .enumerate()
            .filter(|(i, _)| i % folds != f)
            .map(|(_, (r, &t))| (r.clone(), t))
            .unzip();
        let model = fit(&tx, &ty);
        for (i, r) in x.iter().enumerate().filter(|(i, _)| i % folds == f) {
            pred[i] = model.predict(r);
        }
    }
    Metrics::new(y, &pred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_a_confusion() {
        let m = Metrics::new(&[0, 0, 1, 2], &[0, 1, 1, 0]);
        assert_eq!(m.n, 4);
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.confusion[0], [1, 1, 0]);
        assert_eq!(m.confusion[2], [1, 0, 0]);
        // F1: class 0 = 2/(2+1+1) = 0.5, class 1 = 2/(2+1) = 2/3, class 2 = 0
        assert!((m.macro_f1 - (0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        let (class, maj) = Metrics::majority(&[2, 2, 1, 0]);
        assert_eq!(class, 2);
        assert_eq!(maj.accuracy, 0.5);
    }

    #[test]
    fn a_linear_fit_separates_separable_classes_and_is_deterministic() {
        let x: Vec<Vec<f64>> = (0..30)
            .map(|i| vec![(i % 3) as f64 + 0.1 * (i as f64 / 30.0), 1.0])
            .collect();
        let y: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let a = fit_linear(&x, &y, 0.1);
        assert_eq!(a, fit_linear(&x, &y, 0.1));
        let pred: Vec<usize> = x.iter().map(|r| a.predict(r)).collect();
        assert_eq!(Metrics::new(&y, &pred).accuracy, 1.0);
        let cv = cross_validate(&x, &y, 5, |x, y| fit_linear(x, y, 0.1));
        assert_eq!(cv.accuracy, 1.0);
    }
}

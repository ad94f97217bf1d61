//! Percentiles and small helpers.

use serde::Serialize;

/// The nearest-rank percentile `p` (0–100) of `samples`, sorted in place; `NaN` when empty.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Median, p99 and max of a sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// How many samples.
    pub n: usize,
    /// The median.
    pub median: f64,
    /// The 99th percentile (nearest rank: the max when there are fewer than 100 samples).
    pub p99: f64,
    /// The largest.
    pub max: f64,
    /// The smallest.
    pub min: f64,
}

impl Spread {
    /// Summarises `samples`.
    pub fn of(samples: &mut [f64]) -> Spread {
        Spread {
            n: samples.len(),
            median: percentile(samples, 50.0),
            p99: percentile(samples, 99.0),
            max: samples.iter().copied().fold(f64::NAN, f64::max),
            min: samples.iter().copied().fold(f64::NAN, f64::min),
        }
    }
}

/// `order` rotated left by `round` (A B C, B C A, C A B, …).
pub fn rotated<T: Copy>(order: &[T], round: usize) -> Vec<T> {
    let mut out = order.to_vec();
    if !out.is_empty() {
        let k = round % out.len();
        out.rotate_left(k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(
        clippy::float_cmp,
        reason = "percentiles return one of the samples exactly"
    )]
    fn nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        let mut few = vec![3.0, 1.0, 2.0];
        assert_eq!(percentile(&mut few, 99.0), 3.0);
        assert_eq!(percentile(&mut few, 50.0), 2.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }

    #[test]
    fn rotation() {
        assert_eq!(rotated(&[1, 2, 3], 1), [2, 3, 1]);
        assert_eq!(rotated(&[1, 2, 3], 3), [1, 2, 3]);
    }
}

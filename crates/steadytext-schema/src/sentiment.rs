//! Sentiment labels, their numeric scores, and aggregation.
//!
//! Two label sets come from the seed: the five-way [`ReviewSentiment`] of product reviews and the
//! five-way [`TicketSentiment`] of support tickets. Both map to a score in `[-1, 1]` (the seed's
//! `CASE` tables) and to a three-way [`Polarity`]. Averages of scores are bucketed for segment
//! profiles by [`SentimentBucket`] with the seed's thresholds.

use crate::enums::closed_set;
use crate::util;

closed_set! {
    /// The five-way sentiment of a product review (the seed's `product_reviews.sentiment`).
    ///
    /// ```
    /// use steadytext_schema::{Polarity, ReviewSentiment};
    ///
    /// assert_eq!(
    ///     ReviewSentiment::LABELS,
    ///     ["very_positive", "positive", "neutral", "negative", "very_negative"]
    /// );
    /// assert_eq!(ReviewSentiment::Negative.score(), -0.5);
    /// assert_eq!(ReviewSentiment::VeryPositive.polarity(), Polarity::Positive);
    /// ```
    pub enum ReviewSentiment ("review sentiment") {
        /// Score 1.0.
        VeryPositive => "very_positive",
        /// Score 0.5.
        Positive => "positive",
        /// Score 0.0.
        Neutral => "neutral",
        /// Score -0.5.
        Negative => "negative",
        /// Score -1.0.
        VeryNegative => "very_negative",
    }
}

closed_set! {
    /// The customer's mood in a support ticket (the seed's ticket-analysis `sentiment` enum).
    ///
    /// ```
    /// use steadytext_schema::TicketSentiment;
    /// assert_eq!(TicketSentiment::Angry.score(), -1.0);
    /// assert_eq!(TicketSentiment::Happy.score(), 1.0);
    /// ```
    pub enum TicketSentiment ("ticket sentiment") {
        /// Score -1.0.
        Angry => "angry",
        /// Score -0.5.
        Frustrated => "frustrated",
        /// Score 0.0.
        Neutral => "neutral",
        /// Score 0.5.
        Satisfied => "satisfied",
        /// Score 1.0.
        Happy => "happy",
    }
}

closed_set! {
    /// Three-way polarity: the sign of a sentiment score.
    pub enum Polarity ("polarity") {
        /// Score above 0.
        Positive => "positive",
        /// Score exactly 0.
        Neutral => "neutral",
        /// Score below 0.
        Negative => "negative",
    }
}

impl Polarity {
    /// Index of the polarity among the classes: positive 0, neutral 1, negative 2.
    pub fn index(self) -> usize {
        match self {
            Polarity::Positive => 0,
            Polarity::Neutral => 1,
            Polarity::Negative => 2,
        }
    }

    /// The polarity of a class index (see [`Polarity::index`]); `None` above 2.
    pub fn from_index(i: usize) -> Option<Self> {
        [Polarity::Positive, Polarity::Neutral, Polarity::Negative]
            .get(i)
            .copied()
    }
}

closed_set! {
    /// The seed's four buckets for a segment's average sentiment:
    /// `> 0.5` very positive, `> 0` positive, `> -0.5` neutral, else negative.
    ///
    /// ```
    /// use steadytext_schema::SentimentBucket;
    ///
    /// assert_eq!(SentimentBucket::from_average(Some(0.6)), Some(SentimentBucket::VeryPositive));
    /// assert_eq!(SentimentBucket::from_average(Some(0.5)), Some(SentimentBucket::Positive));
    /// assert_eq!(SentimentBucket::from_average(Some(-0.5)), Some(SentimentBucket::Negative));
    /// // No data is not "negative" (the seed's CASE fell through to ELSE 'negative' on NULL).
    /// assert_eq!(SentimentBucket::from_average(None), None);
    /// assert_eq!(SentimentBucket::VeryPositive.phrase(), "very positive");
    /// ```
    pub enum SentimentBucket ("sentiment bucket") {
        /// Average above 0.5.
        VeryPositive => "very_positive",
        /// Average in (0, 0.5].
        Positive => "positive",
        /// Average in (-0.5, 0].
        Neutral => "neutral",
        /// Average at or below -0.5.
        Negative => "negative",
    }
}

impl ReviewSentiment {
    /// The seed's numeric score: 1.0, 0.5, 0.0, -0.5, -1.0.
    pub const fn score(self) -> f64 {
        match self {
            Self::VeryPositive => 1.0,
            Self::Positive => 0.5,
            Self::Neutral => 0.0,
            Self::Negative => -0.5,
            Self::VeryNegative => -1.0,
        }
    }

    /// The sign of [`score`](Self::score).
    pub fn polarity(self) -> Polarity {
        Polarity::of(self.score()).unwrap_or(Polarity::Neutral)
    }

    /// The label whose score is nearest to `score` (ties go away from neutral); `None` for NaN.
    /// Scores outside `[-1, 1]` map to the extremes.
    ///
    /// ```
    /// use steadytext_schema::ReviewSentiment;
    /// assert_eq!(ReviewSentiment::from_score(0.3), Some(ReviewSentiment::Positive));
    /// assert_eq!(ReviewSentiment::from_score(-0.25), Some(ReviewSentiment::Negative));
    /// assert_eq!(ReviewSentiment::from_score(f64::NAN), None);
    /// ```
    pub fn from_score(score: f64) -> Option<Self> {
        if score.is_nan() {
            None
        } else if score >= 0.75 {
            Some(Self::VeryPositive)
        } else if score >= 0.25 {
            Some(Self::Positive)
        } else if score > -0.25 {
            Some(Self::Neutral)
        } else if score > -0.75 {
            Some(Self::Negative)
        } else {
            Some(Self::VeryNegative)
        }
    }
}

impl TicketSentiment {
    /// The seed's numeric score: angry -1.0, frustrated -0.5, neutral 0.0, satisfied 0.5,
    /// happy 1.0.
    pub const fn score(self) -> f64 {
        match self {
            Self::Angry => -1.0,
            Self::Frustrated => -0.5,
            Self::Neutral => 0.0,
            Self::Satisfied => 0.5,
            Self::Happy => 1.0,
        }
    }

    /// The sign of [`score`](Self::score).
    pub fn polarity(self) -> Polarity {
        Polarity::of(self.score()).unwrap_or(Polarity::Neutral)
    }
}

impl Polarity {
    /// The sign of a score; `None` for NaN.
    pub fn of(score: f64) -> Option<Self> {
        if score > 0.0 {
            Some(Self::Positive)
        } else if score < 0.0 {
            Some(Self::Negative)
        } else if score == 0.0 {
            Some(Self::Neutral)
        } else {
            None
        }
    }
}

impl SentimentBucket {
    /// Bucket an average sentiment with the seed's thresholds. `None` (no data, or NaN) stays
    /// `None`: the caller says "no sentiment data" instead of guessing.
    pub fn from_average(avg: Option<f64>) -> Option<Self> {
        let a = util::finite(avg)?;
        Some(if a > 0.5 {
            Self::VeryPositive
        } else if a > 0.0 {
            Self::Positive
        } else if a > -0.5 {
            Self::Neutral
        } else {
            Self::Negative
        })
    }

    /// The seed's words for the bucket, as used in its segment prompt (`"very positive"`).
    pub fn phrase(self) -> &'static str {
        match self {
            Self::VeryPositive => "very positive",
            Self::Positive => "positive",
            Self::Neutral => "neutral",
            Self::Negative => "negative",
        }
    }
}

/// The average of sentiment scores, the seed's `AVG(sentiment_score)`.
///
/// Missing data is explicit: non-finite values are skipped (SQL's `AVG` skips NULL), values are
/// clamped to `[-1, 1]` first (the column is `DECIMAL(3, 2)`, which admits up to ±9.99), and no
/// values at all gives `None` rather than 0.
///
/// ```
/// use steadytext_schema::sentiment::average_sentiment;
///
/// assert_eq!(average_sentiment([1.0, 0.0, -0.5]), Some(0.5 / 3.0));
/// assert_eq!(average_sentiment([f64::NAN, 3.0]), Some(1.0));
/// assert_eq!(average_sentiment(Vec::<f64>::new()), None);
/// ```
pub fn average_sentiment(scores: impl IntoIterator<Item = f64>) -> Option<f64> {
    util::mean(scores.into_iter().map(|s| s.clamp(-1.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn polarity_indices_round_trip() {
        for p in [Polarity::Positive, Polarity::Neutral, Polarity::Negative] {
            assert_eq!(Polarity::from_index(p.index()), Some(p));
        }
        assert_eq!(Polarity::from_index(3), None);
    }

    #[test]
    fn scores_match_the_seed_tables() {
        let review: Vec<f64> = ReviewSentiment::ALL.iter().map(|s| s.score()).collect();
        assert_eq!(review, [1.0, 0.5, 0.0, -0.5, -1.0]);
        let ticket: Vec<f64> = TicketSentiment::ALL.iter().map(|s| s.score()).collect();
        assert_eq!(ticket, [-1.0, -0.5, 0.0, 0.5, 1.0]);
    }

    #[test]
    fn polarity_of_each_label() {
        use Polarity::*;
        let p: Vec<Polarity> = ReviewSentiment::ALL.iter().map(|s| s.polarity()).collect();
        assert_eq!(p, [Positive, Positive, Neutral, Negative, Negative]);
        let t: Vec<Polarity> = TicketSentiment::ALL.iter().map(|s| s.polarity()).collect();
        assert_eq!(t, [Negative, Negative, Neutral, Positive, Positive]);
    }

    #[test]
    fn from_score_inverts_score() {
        for s in ReviewSentiment::ALL {
            assert_eq!(ReviewSentiment::from_score(s.score()), Some(*s));
        }
    }

    #[test]
    fn bucket_boundaries_follow_the_seed() {
        use SentimentBucket::*;
        let cases = [
            (1.0, VeryPositive),
            (0.51, VeryPositive),
            (0.5, Positive),
            (0.01, Positive),
            (0.0, Neutral),
            (-0.49, Neutral),
            (-0.5, Negative),
            (-1.0, Negative),
        ];
        for (avg, want) in cases {
            assert_eq!(
                SentimentBucket::from_average(Some(avg)),
                Some(want),
                "{avg}"
            );
        }
        assert_eq!(SentimentBucket::from_average(Some(f64::NAN)), None);
    }

    proptest! {
        #[test]
        fn average_is_within_bounds(scores in proptest::collection::vec(-20.0f64..20.0, 1..50)) {
            let avg = average_sentiment(scores).unwrap();
            prop_assert!((-1.0..=1.0).contains(&avg));
        }

        #[test]
        fn bucket_is_monotone(a in -1.0f64..=1.0, b in -1.0f64..=1.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            // Buckets are declared from most to least positive, so a higher average never
            // gets a later (more negative) bucket.
            let blo = SentimentBucket::from_average(Some(lo)).unwrap();
            let bhi = SentimentBucket::from_average(Some(hi)).unwrap();
            prop_assert!(bhi <= blo);
        }
    }
}

//! Playbooks: the closed sets of actions the business analyses choose from.
//!
//! A 135M model cannot be trusted to invent a retention offer, a marketing strategy or an
//! upsell: it invents discounts, products and figures. So the actions are data — [`Play`]s in a
//! [`Playbooks`] — and the analyses only *choose* among them:
//!
//! 1. **Facts.** Each analysis states its numbers as [`Facts`] (`churn_risk`, `lifetime_value`,
//!    `open_tickets`, `themes`, …), each with the value rules compare and the text templates
//!    show ("2 open support tickets", "$2500.00").
//! 2. **Rules.** A play is *eligible* when every [`Condition`] in its `when` holds and every
//!    `{fact}` its templates name is known. A condition on a fact the analysis does not have
//!    never holds.
//! 3. **Order.** Eligible plays are ordered by specificity (more conditions first), then by
//!    `rank` (lower first); plays equal on both form a *tie group*.
//! 4. **Scoring.** A tie group of more than one play that the selection reaches is ordered by
//!    the model's choice scores ([`steadytext_core::Engine::choice`] over the plays' titles,
//!    given the facts); equal scores, and groups the model is not asked about, fall back to the
//!    play id's alphabetical order. Everything is deterministic.
//! 5. **Text.** A chosen play's title, action and expected impact are its templates filled
//!    with the facts' shown values: no word of them is the model's.
//!
//! Defaults ship as JSON (`playbooks/*.json` in this crate); library users replace them with
//! [`Playbooks::from_json`] or by editing the lists, and pass them to
//! [`Analyst::with_playbooks`](crate::Analyst::with_playbooks).
//!
//! ```
//! use steadytext_schema::playbooks::{rank_plays, Facts, Playbooks};
//!
//! let books = Playbooks::default();
//! let facts = Facts::new()
//!     .number("churn_risk", 0.82, "0.82")
//!     .number("lifetime_value", 150.0, "$150.00")
//!     .number("open_tickets", 1.0, "1 open support ticket");
//! let groups = rank_plays(&books.retention, &facts);
//! let first = groups[0][0];
//! // Two plays with two conditions would tie; here only one has both conditions met.
//! assert_eq!(first.id, "targeted-discount");
//! assert_eq!(
//!     first.fill(&facts).unwrap().action,
//!     "Offer a discount on the next order to a customer at churn risk 0.82 with a lifetime value of $150.00."
//! );
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What can be wrong with a playbook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaybookError {
    /// The JSON does not parse into plays.
    #[error("playbook {list} is not valid JSON plays: {reason}")]
    Json {
        /// Which list.
        list: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// Two plays of one list share an id.
    #[error("playbook {list} has the play id {id:?} twice")]
    DuplicateId {
        /// Which list.
        list: &'static str,
        /// The id.
        id: String,
    },
    /// Two plays of one list share a title (the model chooses between titles).
    #[error("playbook {list} has the title {title:?} twice")]
    DuplicateTitle {
        /// Which list.
        list: &'static str,
        /// The title.
        title: String,
    },
    /// A condition mixes numeric bounds with `any_of`.
    #[error("play {id:?} in {list} has a condition on {fact:?} with both bounds and any_of")]
    BadCondition {
        /// Which list.
        list: &'static str,
        /// The play.
        id: String,
        /// The condition's fact.
        fact: String,
    },
    /// Too few unconditional plays to always fill the required number.
    #[error("playbook {list} needs at least {need} plays without conditions, has {got}")]
    TooFewDefaults {
        /// Which list.
        list: &'static str,
        /// How many are needed.
        need: usize,
        /// How many there are.
        got: usize,
    },
}

/// A fact's value as rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FactValue {
    /// A number (a score, an amount, a count).
    Number(f64),
    /// Texts (a segment name, review themes).
    Texts(Vec<String>),
}

/// One fact: its value and how templates show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fact {
    /// What conditions compare.
    pub value: FactValue,
    /// What `{name}` in a template becomes.
    pub shown: String,
}

/// The named facts of one analysis (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Facts(pub BTreeMap<String, Fact>);

impl Facts {
    /// No facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a number, shown as `shown`; a non-finite value is left out (unknown).
    pub fn number(mut self, name: &str, value: f64, shown: impl Into<String>) -> Self {
        if value.is_finite() {
            self.0.insert(
                name.to_string(),
                Fact {
                    value: FactValue::Number(value),
                    shown: shown.into(),
                },
            );
        }
        self
    }

    /// [`Facts::number`] when `value` is known.
    pub fn maybe_number(
        self,
        name: &str,
        value: Option<f64>,
        shown: impl Fn(f64) -> String,
    ) -> Self {
        match value {
            Some(v) => {
                let s = shown(v);
                self.number(name, v, s)
            }
            None => self,
        }
    }

    /// Add texts, shown comma-separated; an empty list is left out (unknown).
    pub fn texts(mut self, name: &str, values: Vec<String>) -> Self {
        let values: Vec<String> = values
            .into_iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if !values.is_empty() {
            let shown = values.join(", ");
            self.0.insert(
                name.to_string(),
                Fact {
                    value: FactValue::Texts(values),
                    shown,
                },
            );
        }
        self
    }

    /// One text (empty is unknown).
    pub fn text(self, name: &str, value: &str) -> Self {
        self.texts(name, vec![value.to_string()])
    }

    /// The fact called `name`.
    pub fn get(&self, name: &str) -> Option<&Fact> {
        self.0.get(name)
    }

    /// `template` with every `{name}` replaced by that fact's shown value; `None` when a named
    /// fact is unknown.
    ///
    /// ```
    /// use steadytext_schema::playbooks::Facts;
    /// let f = Facts::new().number("open_tickets", 2.0, "2 open support tickets");
    /// assert_eq!(f.fill("Close the {open_tickets}.").as_deref(), Some("Close the 2 open support tickets."));
    /// assert_eq!(f.fill("Call {nobody}."), None);
    /// ```
    pub fn fill(&self, template: &str) -> Option<String> {
        let mut out = String::with_capacity(template.len());
        let mut last = 0;
        for m in PLACEHOLDER.captures_iter(template) {
            let whole = m.get(0).expect("match");
            out.push_str(&template[last..whole.start()]);
            out.push_str(&self.get(&m[1])?.shown);
            last = whole.end();
        }
        out.push_str(&template[last..]);
        Some(out)
    }
}

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{([a-z_][a-z0-9_]*)\}").expect("valid placeholder regex"));

/// When a play applies: one test on one fact. Bounds compare a number fact (all given bounds
/// must hold); `any_of` matches a texts fact when one of its texts contains one of the words
/// (case-insensitively); a condition with neither holds when the fact is known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The fact's name.
    pub fact: String,
    /// `value >= at_least`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// `value > above`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// `value <= at_most`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    /// `value < below`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// One of the fact's texts contains one of these (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
}

impl Condition {
    fn has_bounds(&self) -> bool {
        self.at_least.is_some()
            || self.above.is_some()
            || self.at_most.is_some()
            || self.below.is_some()
    }

    /// Whether the condition holds for `facts`.
    pub fn holds(&self, facts: &Facts) -> bool {
        let Some(fact) = facts.get(&self.fact) else {
            return false;
        };
        match &fact.value {
            FactValue::Number(v) => {
                let v = *v;
                self.any_of.is_empty()
                    && self.at_least.is_none_or(|b| v >= b)
                    && self.above.is_none_or(|b| v > b)
                    && self.at_most.is_none_or(|b| v <= b)
                    && self.below.is_none_or(|b| v < b)
            }
            FactValue::Texts(texts) => {
                if self.has_bounds() {
                    return false;
                }
                self.any_of.is_empty()
                    || texts.iter().any(|t| {
                        let t = t.to_lowercase();
                        self.any_of.iter().any(|w| t.contains(&w.to_lowercase()))
                    })
            }
        }
    }
}

/// One action a playbook offers. `title`, `action` and `expected_impact` are templates over
/// the analysis's [`Facts`] (`{churn_risk}`, `{segment}`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Play {
    /// A stable id (stored with results; breaks ties alphabetically).
    pub id: String,
    /// A short name (what the model chooses between in a tie).
    pub title: String,
    /// What to do.
    pub action: String,
    /// What it should achieve (marketing plays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_impact: Option<String>,
    /// Every condition must hold; none means the play always applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    /// Among plays with as many conditions, lower ranks come first.
    #[serde(default)]
    pub rank: i32,
}

/// How a chosen play came first among its equals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// The rules alone placed it (no tie, or ties broken by id).
    Rules,
    /// It was in a tie group the model's choice scores ordered.
    ModelScore,
}

/// A play as chosen for one analysis: its templates filled with the facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChosenPlay {
    /// [`Play::id`].
    pub play: String,
    /// The filled title.
    pub title: String,
    /// The filled action.
    pub action: String,
    /// The filled expected impact, if the play has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_impact: Option<String>,
    /// Rules or model scores.
    pub chosen_by: ChosenBy,
}

impl Play {
    /// Every condition holds for `facts`.
    pub fn applies(&self, facts: &Facts) -> bool {
        self.when.iter().all(|c| c.holds(facts))
    }

    /// The play's templates filled with `facts`; `None` when one names an unknown fact.
    pub fn fill(&self, facts: &Facts) -> Option<ChosenPlay> {
        Some(ChosenPlay {
            play: self.id.clone(),
            title: facts.fill(&self.title)?,
            action: facts.fill(&self.action)?,
            expected_impact: match &self.expected_impact {
                Some(t) => Some(facts.fill(t)?),
                None => None,
            },
            chosen_by: ChosenBy::Rules,
        })
    }
}

/// The eligible plays of `plays` for `facts` (conditions hold, templates fill), in rule order
/// and grouped into ties: more conditions first, then lower rank; within a group by id.
pub fn rank_plays<'p>(plays: &'p [Play], facts: &Facts) -> Vec<Vec<&'p Play>> {
    let mut eligible: Vec<&Play> = plays
        .iter()
        .filter(|p| p.applies(facts) && p.fill(facts).is_some())
        .collect();
    let key = |p: &Play| (std::cmp::Reverse(p.when.len()), p.rank);
    eligible.sort_by(|a, b| key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id)));
    let mut groups: Vec<Vec<&Play>> = Vec::new();
    for p in eligible {
        match groups.last_mut() {
            Some(g) if key(g[0]) == key(p) => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    groups
}

/// Order one tie group by model scores (`scores[i]` for `group[i]`, higher first); equal or
/// missing scores keep the group's id order. Deterministic for any scores, NaN included.
pub fn order_by_scores<'p>(group: &[&'p Play], scores: &[f64]) -> Vec<&'p Play> {
    let mut indexed: Vec<(usize, f64)> = (0..group.len())
        .map(|i| {
            let s = scores.get(i).copied().unwrap_or(f64::NEG_INFINITY);
            (i, if s.is_nan() { f64::NEG_INFINITY } else { s })
        })
        .collect();
    indexed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    indexed.into_iter().map(|(i, _)| group[i]).collect()
}

/// The first `n` plays of `groups` by rules alone (ties by id), filled.
pub fn choose_by_rules(groups: &[Vec<&Play>], facts: &Facts, n: usize) -> Vec<ChosenPlay> {
    groups
        .iter()
        .flatten()
        .filter_map(|p| p.fill(facts))
        .take(n)
        .collect()
}

/// Every playbook the analyses choose from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbooks {
    /// Retention offers: retention strategies and retention recommendations.
    pub retention: Vec<Play>,
    /// Upsell plays: upsell recommendations.
    pub upsell: Vec<Play>,
    /// Marketing plays: a segment's three strategies.
    pub marketing: Vec<Play>,
    /// Company-wide actions: the executive summary.
    pub executive: Vec<Play>,
}

/// How many marketing strategies a segment gets, and so how many unconditional marketing
/// plays a playbook needs.
pub const MARKETING_PLAYS: usize = 3;
/// At most this many actions in a retention strategy.
pub const RETENTION_ACTIONS: usize = 3;
/// At most this many actions in an executive summary.
pub const EXECUTIVE_ACTIONS: usize = 3;

impl Default for Playbooks {
    /// The shipped defaults (`playbooks/*.json`).
    fn default() -> Self {
        Self::from_json(
            include_str!("playbooks/retention.json"),
            include_str!("playbooks/upsell.json"),
            include_str!("playbooks/marketing.json"),
            include_str!("playbooks/executive.json"),
        )
        .expect("the shipped playbooks are valid")
    }
}

impl Playbooks {
    /// Parse four JSON arrays of [`Play`]s and [`validate`](Self::validate) them.
    ///
    /// ```
    /// use steadytext_schema::playbooks::{Playbooks, PlaybookError};
    /// let plays = r#"[{"id": "a", "title": "A", "action": "Do a."},
    ///                 {"id": "b", "title": "B", "action": "Do b."},
    ///                 {"id": "c", "title": "C", "action": "Do c for {segment}."}]"#;
    /// let books = Playbooks::from_json(plays, plays, plays, plays).unwrap();
    /// assert_eq!(books.marketing.len(), 3);
    /// let two = r#"[{"id": "a", "title": "A", "action": "Do a."}]"#;
    /// assert!(matches!(
    ///     Playbooks::from_json(plays, plays, two, plays),
    ///     Err(PlaybookError::TooFewDefaults { list: "marketing", need: 3, got: 1 })
    /// ));
    /// ```
    pub fn from_json(
        retention: &str,
        upsell: &str,
        marketing: &str,
        executive: &str,
    ) -> Result<Self, PlaybookError> {
        let parse = |list: &'static str, s: &str| {
            serde_json::from_str::<Vec<Play>>(s).map_err(|e| PlaybookError::Json {
                list,
                reason: e.to_string(),
            })
        };
        let books = Self {
            retention: parse("retention", retention)?,
            upsell: parse("upsell", upsell)?,
            marketing: parse("marketing", marketing)?,
            executive: parse("executive", executive)?,
        };
        books.validate()?;
        Ok(books)
    }

    /// Ids and titles unique per list, no condition mixing bounds with `any_of`, and at least
    /// [`MARKETING_PLAYS`] unconditional marketing plays (so a segment always gets three).
    pub fn validate(&self) -> Result<(), PlaybookError> {
        for (list, plays) in self.lists() {
            let mut ids = BTreeSet::new();
            let mut titles = BTreeSet::new();
            for p in plays {
                if !ids.insert(p.id.as_str()) {
                    return Err(PlaybookError::DuplicateId {
                        list,
                        id: p.id.clone(),
                    });
                }
                if !titles.insert(p.title.trim().to_lowercase()) {
                    return Err(PlaybookError::DuplicateTitle {
                        list,
                        title: p.title.clone(),
                    });
                }
                if let Some(c) = p
                    .when
                    .iter()
                    .find(|c| c.has_bounds() && !c.any_of.is_empty())
                {
                    return Err(PlaybookError::BadCondition {
                        list,
                        id: p.id.clone(),
                        fact: c.fact.clone(),
                    });
                }
            }
        }
        let defaults = self.marketing.iter().filter(|p| p.when.is_empty()).count();
        if defaults < MARKETING_PLAYS {
            return Err(PlaybookError::TooFewDefaults {
                list: "marketing",
                need: MARKETING_PLAYS,
                got: defaults,
            });
        }
        Ok(())
    }

    fn lists(&self) -> [(&'static str, &[Play]); 4] {
        [
            ("retention", &self.retention),
            ("upsell", &self.upsell),
            ("marketing", &self.marketing),
            ("executive", &self.executive),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn play(id: &str, when: Vec<Condition>, rank: i32) -> Play {
        Play {
            id: id.into(),
            title: format!("Title {id}"),
            action: format!("Do {id}."),
            expected_impact: None,
            when,
            rank,
        }
    }

    fn at_least(fact: &str, v: f64) -> Condition {
        Condition {
            fact: fact.into(),
            at_least: Some(v),
            ..Default::default()
        }
    }

    #[test]
    fn the_shipped_playbooks_are_valid() {
        let b = Playbooks::default();
        b.validate().unwrap();
        assert!(b.retention.iter().any(|p| p.when.is_empty()));
        assert!(b.upsell.iter().any(|p| p.when.is_empty()));
        assert!(b.executive.iter().any(|p| p.when.is_empty()));
        // No playbook text carries a figure of its own: numbers come from the facts.
        for (_, plays) in b.lists() {
            for p in plays {
                let text = format!("{} {} {:?}", p.title, p.action, p.expected_impact);
                assert!(!text.chars().any(|c| c.is_ascii_digit()), "{text}");
            }
        }
    }

    #[test]
    fn conditions_compare_numbers_and_texts() {
        let f = Facts::new()
            .number("risk", 0.7, "0.70")
            .texts("themes", vec!["Shipping took forever".into()]);
        let above = |b| Condition {
            fact: "risk".into(),
            above: Some(b),
            ..Default::default()
        };
        assert!(above(0.6).holds(&f) && !above(0.7).holds(&f));
        assert!(at_least("risk", 0.7).holds(&f));
        assert!(
            !at_least("missing", 0.0).holds(&f),
            "unknown facts never hold"
        );
        let any = |w: &str| Condition {
            fact: "themes".into(),
            any_of: vec![w.into()],
            ..Default::default()
        };
        assert!(any("shipping").holds(&f) && !any("price").holds(&f));
        assert!(
            !at_least("themes", 0.0).holds(&f),
            "bounds never hold on texts"
        );
        let known = Condition {
            fact: "themes".into(),
            ..Default::default()
        };
        assert!(known.holds(&f));
        assert!(Facts::new().texts("x", vec![" ".into()]).get("x").is_none());
        assert!(Facts::new().number("x", f64::NAN, "NaN").get("x").is_none());
    }

    #[test]
    fn specific_plays_come_first_then_rank_then_id() {
        let plays = vec![
            play("z-default", vec![], 10),
            play("b", vec![at_least("x", 1.0)], 0),
            play("a", vec![at_least("x", 1.0)], 0),
            play("c", vec![at_least("x", 1.0)], -1),
            play("two", vec![at_least("x", 1.0), at_least("y", 0.0)], 5),
            play("never", vec![at_least("x", 99.0)], -100),
        ];
        let f = Facts::new().number("x", 2.0, "2").number("y", 0.0, "0");
        let groups: Vec<Vec<&str>> = rank_plays(&plays, &f)
            .iter()
            .map(|g| g.iter().map(|p| p.id.as_str()).collect())
            .collect();
        assert_eq!(
            groups,
            [vec!["two"], vec!["c"], vec!["a", "b"], vec!["z-default"]]
        );
    }

    #[test]
    fn templates_naming_unknown_facts_make_a_play_ineligible() {
        let mut p = play("p", vec![], 0);
        p.action = "Call about {missing}.".into();
        assert!(rank_plays(&[p], &Facts::new()).is_empty());
    }

    #[test]
    fn validation_rejects_duplicates_and_mixed_conditions() {
        let ok = Playbooks::default();
        let mut b = ok.clone();
        b.upsell.push(b.upsell[0].clone());
        assert!(matches!(
            b.validate(),
            Err(PlaybookError::DuplicateId { list: "upsell", .. })
        ));
        let mut b = ok.clone();
        let mut p = b.executive[0].clone();
        p.id = "other".into();
        b.executive.push(p);
        assert!(matches!(
            b.validate(),
            Err(PlaybookError::DuplicateTitle { .. })
        ));
        let mut b = ok;
        b.retention[0].when[0].any_of = vec!["x".into()];
        assert!(matches!(
            b.validate(),
            Err(PlaybookError::BadCondition { .. })
        ));
    }

    proptest! {
        #[test]
        fn score_order_is_deterministic_and_a_permutation(
            scores in proptest::collection::vec(prop_oneof![Just(f64::NAN), -10.0f64..0.0, Just(-1.0)], 1..6),
        ) {
            let plays: Vec<Play> = (0..scores.len()).map(|i| play(&format!("p{i}"), vec![], 0)).collect();
            let group: Vec<&Play> = plays.iter().collect();
            let a = order_by_scores(&group, &scores);
            let b = order_by_scores(&group, &scores);
            prop_assert_eq!(&a, &b);
            let mut ids: Vec<&str> = a.iter().map(|p| p.id.as_str()).collect();
            ids.sort();
            let mut want: Vec<&str> = plays.iter().map(|p| p.id.as_str()).collect();
            want.sort();
            prop_assert_eq!(ids, want);
            // Higher scores first; equal scores keep id order.
            for w in a.windows(2) {
                let s = |p: &Play| {
                    let i: usize = p.id[1..].parse().unwrap();
                    (if scores[i].is_nan() { f64::NEG_INFINITY } else { scores[i] }, i)
                };
                let (s0, i0) = s(w[0]);
                let (s1, i1) = s(w[1]);
                prop_assert!(s0 > s1 || (s0 == s1 && i0 < i1));
            }
        }

        #[test]
        fn marketing_always_yields_three_distinct_plays(
            ltv in proptest::option::of(0.0f64..5000.0),
            rating in proptest::option::of(1.0f64..=5.0),
            share in 0.0f64..=1.0,
            bucket in 0usize..5,
            themes in proptest::collection::vec("[a-z ]{0,12}", 0..4),
        ) {
            let books = Playbooks::default();
            let mut f = Facts::new()
                .text("segment", "premium")
                .number("customers", 3.0, "3 customers")
                .number("reviews", 1.0, "1 review")
                .number("at_risk_customers", 1.0, "1 customer")
                .number("at_risk_share", share, format!("{share:.2}"))
                .texts("themes", themes)
                .maybe_number("avg_lifetime_value", ltv, |v| format!("${v:.2}"))
                .maybe_number("avg_rating", rating, |v| format!("{v:.1}"));
            if bucket < 4 {
                f = f.text("sentiment", ["very positive", "positive", "neutral", "negative"][bucket]);
            }
            let groups = rank_plays(&books.marketing, &f);
            let chosen = choose_by_rules(&groups, &f, MARKETING_PLAYS);
            prop_assert_eq!(chosen.len(), MARKETING_PLAYS);
            let ids: BTreeSet<&str> = chosen.iter().map(|c| c.play.as_str()).collect();
            prop_assert_eq!(ids.len(), MARKETING_PLAYS);
            for c in &chosen {
                prop_assert!(!c.action.contains('{'), "{}", c.action);
            }
        }
    }
}

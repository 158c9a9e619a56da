//! Closed sets of labels from the seed, as enums.
//!
//! Every enum here serialises to exactly the seed's string (snake_case), lists its variants in
//! the seed's order in `ALL` (and their strings in `LABELS`, ready to pass to a choice call),
//! implements [`Display`](std::fmt::Display) with the same string, and parses with
//! [`FromStr`](std::str::FromStr). Parsing is lenient about case, surrounding whitespace and
//! `-`/space for `_` (`"Very Positive"` parses as `very_positive`); serde deserialisation is
//! strict (exact strings only), so stored data stays canonical.
//!
//! Their JSON Schemas are inlined string enums (`{"type": "string", "enum": [...]}`), so a schema
//! that contains them (e.g. [`TicketAnalysis`](crate::TicketAnalysis)) needs no `$defs`.

/// Define a closed set of string labels. Internal: see the module docs for what it generates.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $label:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $label)] $variant, )+
        }

        impl $name {
            /// Every variant, in the seed's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Every variant's label, in the seed's order (the options for a choice call).
            pub const LABELS: &'static [&'static str] = &[$($label),+];

            /// The seed's string for this variant.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)+
                }
            }
        }

        /// A plain inlined string enum, `{"type": "string", "enum": [labels]}` (a derive would
        /// turn the variants' doc comments into a `oneOf` of `const`s).
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": Self::LABELS })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::SchemaError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let key = $crate::enums::canonical_label(s);
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == key)
                    .ok_or_else(|| $crate::error::SchemaError::UnknownVariant {
                        kind: $kind,
                        value: s.to_string(),
                        expected: Self::LABELS.join(", "),
                    })
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::error::SchemaError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> &'static str {
                v.as_str()
            }
        }
    };
}
pub(crate) use closed_set;

/// Lower-case, trimmed, with runs of spaces and `-` turned into `_`.
pub(crate) fn canonical_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_sep = false;
    for c in s.trim().chars() {
        if c == ' ' || c == '-' || c == '_' || c.is_whitespace() {
            pending_sep = true;
        } else {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

closed_set! {
    /// How urgent a support ticket is; also the ticket's `priority` column (the seed fills
    /// `priority` from the analysed urgency). Ordered: `Low < Medium < High < Critical`.
    ///
    /// ```
    /// use steadytext_schema::Urgency;
    ///
    /// assert_eq!(Urgency::LABELS, ["low", "medium", "high", "critical"]);
    /// assert!(Urgency::Critical > Urgency::High);
    /// assert_eq!("HIGH".parse::<Urgency>().unwrap(), Urgency::High);
    /// ```
    pub enum Urgency ("urgency") {
        /// Can wait.
        Low => "low",
        /// Normal queue.
        Medium => "medium",
        /// Soon.
        High => "high",
        /// Now; always routed to a human (see [`crate::human_review`]).
        Critical => "critical",
    }
}

closed_set! {
    /// What kind of interaction a `customer_interactions` row records.
    ///
    /// ```
    /// use steadytext_schema::InteractionType;
    /// assert_eq!(InteractionType::Review.to_string(), "review");
    /// ```
    pub enum InteractionType ("interaction type") {
        /// A support contact (the seed logs analysed tickets as `support`).
        Support => "support",
        /// A purchase.
        Purchase => "purchase",
        /// A product review (the seed logs analysed reviews as `review`).
        Review => "review",
        /// An email exchange.
        Email => "email",
        /// A chat session.
        Chat => "chat",
    }
}

closed_set! {
    /// Where an interaction happened. The seed's column comment lists web, mobile, email and
    /// phone, but its ticket analysis logs `'ticket'` as the channel, so `Ticket` is included.
    ///
    /// ```
    /// use steadytext_schema::Channel;
    /// assert_eq!(Channel::LABELS, ["web", "mobile", "email", "phone", "ticket"]);
    /// ```
    pub enum Channel ("channel") {
        /// Website.
        Web => "web",
        /// Mobile app.
        Mobile => "mobile",
        /// Email.
        Email => "email",
        /// Phone call.
        Phone => "phone",
        /// The support-ticket system.
        Ticket => "ticket",
    }
}

closed_set! {
    /// The sentiment dashboard's customer status (see [`crate::status::customer_status`]).
    ///
    /// ```
    /// use steadytext_schema::CustomerStatus;
    /// assert_eq!(CustomerStatus::HighRisk.to_string(), "high_risk");
    /// ```
    pub enum CustomerStatus ("customer status") {
        /// Negative sentiment and several recent issues.
        HighRisk => "high_risk",
        /// Negative sentiment or many recent issues.
        MediumRisk => "medium_risk",
        /// Clearly positive sentiment and no recent issues.
        Loyal => "loyal",
        /// Everything else.
        Normal => "normal",
    }
}

closed_set! {
    /// The kinds of personalised recommendation the seed generates, in its order.
    ///
    /// ```
    /// use steadytext_schema::RecommendationType;
    /// assert_eq!(RecommendationType::LABELS, ["product", "retention", "upsell"]);
    /// ```
    pub enum RecommendationType ("recommendation type") {
        /// A product that fits the customer.
        Product => "product",
        /// An offer to keep the customer.
        Retention => "retention",
        /// A higher-value offer.
        Upsell => "upsell",
    }
}

impl CustomerStatus {
    /// The status as words for a prompt (`"high risk"`).
    pub fn phrase(self) -> &'static str {
        match self {
            Self::HighRisk => "high risk",
            Self::MediumRisk => "medium risk",
            Self::Loyal => "loyal",
            Self::Normal => "normal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_through_serde_display_and_parse() {
        for u in Urgency::ALL {
            let json = serde_json::to_string(u).unwrap();
            assert_eq!(json, format!("\"{u}\""));
            assert_eq!(serde_json::from_str::<Urgency>(&json).unwrap(), *u);
            assert_eq!(u.to_string().parse::<Urgency>().unwrap(), *u);
        }
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), *c);
        }
    }

    #[test]
    fn parsing_is_lenient_but_serde_is_strict() {
        assert_eq!(
            " Medium-Risk ".parse::<CustomerStatus>().unwrap(),
            CustomerStatus::MediumRisk
        );
        assert_eq!(
            "medium  risk".parse::<CustomerStatus>().unwrap(),
            CustomerStatus::MediumRisk
        );
        assert!(serde_json::from_str::<CustomerStatus>("\"Medium-Risk\"").is_err());
        assert!("".parse::<Channel>().is_err());
        assert!("sms".parse::<Channel>().is_err());
    }

    #[test]
    fn schema_is_an_inline_string_enum() {
        let schema = serde_json::to_value(schemars::schema_for!(Urgency)).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(
            schema["enum"],
            serde_json::json!(["low", "medium", "high", "critical"])
        );
    }
}

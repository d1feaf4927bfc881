//! Scenarios, the HTTP operations they are made of, and `--mix` weights.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What each virtual user does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// `GET /health`.
    Health,
    /// `GET /v1/products/{sku}` on a seeded product.
    GetProduct,
    /// `GET /v1/products` (first page).
    ListProducts,
    /// `POST /v1/orders`, one unit of a seeded product.
    CreateOrder,
    /// `GET /v1/orders/{id}` on a seeded order.
    GetOrder,
    /// Create an order, confirm it, ship it: three requests in a row.
    OrderLifecycle,
    /// A weighted choice of the others (`--mix`).
    Mixed,
}

impl Scenario {
    /// Every scenario, in the order the help lists them.
    pub(crate) const ALL: [Self; 7] = [
        Self::Health,
        Self::GetProduct,
        Self::ListProducts,
        Self::CreateOrder,
        Self::GetOrder,
        Self::OrderLifecycle,
        Self::Mixed,
    ];

    /// The name used on the command line and in results.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::GetProduct => "get-product",
            Self::ListProducts => "list-products",
            Self::CreateOrder => "create-order",
            Self::GetOrder => "get-order",
            Self::OrderLifecycle => "order-lifecycle",
            Self::Mixed => "mixed",
        }
    }

    fn known() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// Parses a scenario name (clap value parser).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| format!("unknown scenario {s:?}; known: {}", Self::known()))
    }

    /// Whether it needs seeded products.
    pub(crate) const fn needs_products(self) -> bool {
        matches!(
            self,
            Self::GetProduct | Self::CreateOrder | Self::GetOrder | Self::OrderLifecycle
        )
    }

    /// Whether it needs seeded orders.
    pub(crate) const fn needs_orders(self) -> bool {
        matches!(self, Self::GetOrder)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One HTTP call: the unit of the per-operation statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Health,
    GetProduct,
    ListProducts,
    CreateOrder,
    GetOrder,
    ConfirmOrder,
    ShipOrder,
}

impl Op {
    /// Every operation, indexed by [`Op::index`].
    pub(crate) const ALL: [Self; 7] = [
        Self::Health,
        Self::GetProduct,
        Self::ListProducts,
        Self::CreateOrder,
        Self::GetOrder,
        Self::ConfirmOrder,
        Self::ShipOrder,
    ];
    /// How many there are.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Its slot in per-operation arrays.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The name in results.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::GetProduct => "get-product",
            Self::ListProducts => "list-products",
            Self::CreateOrder => "create-order",
            Self::GetOrder => "get-order",
            Self::ConfirmOrder => "confirm-order",
            Self::ShipOrder => "ship-order",
        }
    }
}

/// One weighted entry of a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MixEntry {
    pub(crate) scenario: Scenario,
    pub(crate) weight: u32,
}

/// Weighted scenarios for `--scenario mixed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Mix {
    pub(crate) entries: Vec<MixEntry>,
}

impl Mix {
    /// The mix used when `--scenario mixed` comes without `--mix`.
    pub(crate) const DEFAULT: &'static str = "get-product=70,create-order=20,get-order=10";

    /// Parses `name=weight,name=weight` (clap value parser). Names are the
    /// scenarios other than `mixed`; weights are positive integers.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut entries: Vec<MixEntry> = Vec::new();
        let mut total: u32 = 0;
        if s.trim().is_empty() {
            return Err(format!(
                "empty mix; expected NAME=WEIGHT,... e.g. {}",
                Self::DEFAULT
            ));
        }
        for part in s.split(',') {
            let part = part.trim();
            let Some((name, weight)) = part.split_once('=') else {
                return Err(format!(
                    "bad mix entry {part:?}: expected NAME=WEIGHT, e.g. {}",
                    Self::DEFAULT
                ));
            };
            let name = name.trim();
            let scenario = Scenario::parse(name).map_err(|_| {
                format!(
                    "unknown scenario {name:?} in mix; known: {}",
                    Scenario::ALL
                        .into_iter()
                        .filter(|s| *s != Scenario::Mixed)
                        .map(Scenario::name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            if scenario == Scenario::Mixed {
                return Err("a mix cannot contain \"mixed\"".to_owned());
            }
            let weight_text = weight.trim();
            let weight = match weight_text.parse::<u32>() {
                Ok(w) if w > 0 => w,
                _ => {
                    return Err(format!(
                        "bad weight {weight_text:?} for {name}: weights are positive integers (relative, e.g. 70)"
                    ));
                }
            };
            if entries.iter().any(|e| e.scenario == scenario) {
                return Err(format!("{name} appears twice in the mix"));
            }
            total = total
                .checked_add(weight)
                .ok_or_else(|| "mix weights add up to more than 4294967295".to_owned())?;
            entries.push(MixEntry { scenario, weight });
        }
        Ok(Self { entries })
    }

    /// The sum of the weights.
    pub(crate) fn total(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.weight)).sum()
    }

    /// The scenario for `roll`, uniform in `0..total()`.
    pub(crate) fn pick(&self, roll: u64) -> Scenario {
        let mut left = roll;
        for e in &self.entries {
            let w = u64::from(e.weight);
            if left < w {
                return e.scenario;
            }
            left -= w;
        }
        self.entries.last().map_or(Scenario::Health, |e| e.scenario)
    }

    /// Whether any entry needs seeded products.
    pub(crate) fn needs_products(&self) -> bool {
        self.entries.iter().any(|e| e.scenario.needs_products())
    }

    /// Whether any entry needs seeded orders.
    pub(crate) fn needs_orders(&self) -> bool {
        self.entries.iter().any(|e| e.scenario.needs_orders())
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", e.scenario, e.weight)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Ok(s));
            assert_eq!(s.to_string(), s.name());
        }
        assert_eq!(Scenario::parse(" get-order "), Ok(Scenario::GetOrder));
    }

    #[test]
    fn unknown_scenario_lists_the_known_ones() {
        let err = Scenario::parse("get-products").expect_err("unknown");
        assert!(err.contains("\"get-products\""), "{err}");
        assert!(
            err.contains("order-lifecycle") && err.contains("mixed"),
            "{err}"
        );
    }

    #[test]
    fn mix_parses_weights() {
        let mix = Mix::parse("get-product=70, create-order=20,get-order=10").expect("mix");
        assert_eq!(mix.entries.len(), 3);
        assert_eq!(mix.total(), 100);
        assert_eq!(mix.to_string(), Mix::DEFAULT);
        assert_eq!(mix.pick(0), Scenario::GetProduct);
        assert_eq!(mix.pick(69), Scenario::GetProduct);
        assert_eq!(mix.pick(70), Scenario::CreateOrder);
        assert_eq!(mix.pick(89), Scenario::CreateOrder);
        assert_eq!(mix.pick(90), Scenario::GetOrder);
        assert_eq!(mix.pick(99), Scenario::GetOrder);
        assert!(mix.needs_products() && mix.needs_orders());
        let health = Mix::parse("health=1").expect("mix");
        assert!(!health.needs_products());
    }

    #[test]
    fn mix_rejects_bad_input_clearly() {
        let cases = [
            ("", "empty mix"),
            ("get-product", "expected NAME=WEIGHT"),
            ("get-prodcut=5", "unknown scenario \"get-prodcut\""),
            ("get-product=0", "bad weight \"0\" for get-product"),
            ("get-product=-3", "bad weight \"-3\""),
            ("get-product=1.5", "bad weight \"1.5\""),
            ("get-product=abc", "bad weight \"abc\""),
            ("get-product=", "bad weight \"\""),
            ("get-product=1,get-product=2", "appears twice"),
            ("mixed=1", "cannot contain \"mixed\""),
            ("health=4294967295,get-order=1", "more than"),
            ("health=1,", "expected NAME=WEIGHT"),
        ];
        for (input, want) in cases {
            let err = Mix::parse(input).expect_err(input);
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }

    #[test]
    fn ops_are_indexed_in_order() {
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        assert_eq!(Op::COUNT, 7);
    }
}

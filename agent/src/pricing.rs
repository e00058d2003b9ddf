//! Estimated model cost: a price table in USD per million tokens, with
//! defaults for common OpenAI models and overrides from configuration.

use std::collections::HashMap;

use crate::models::Usage;

/// `(input, output)` USD per million tokens, by model name.
#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: HashMap<String, (f64, f64)>,
}

const DEFAULTS: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("text-embedding-3-small", 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.0),
    ("text-embedding-ada-002", 0.10, 0.0),
];

impl Default for PriceTable {
    fn default() -> Self {
        Self { prices: DEFAULTS.iter().map(|(m, i, o)| (m.to_string(), (*i, *o))).collect() }
    }
}

impl PriceTable {
    /// Defaults plus overrides written `model=input:output,model=input:output`.
    pub fn with_overrides(spec: &str) -> Result<Self, String> {
        let mut table = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (model, prices) = item.split_once('=').ok_or_else(|| format!("`{item}` is not model=input:output"))?;
            let (input, output) = prices.split_once(':').unwrap_or((prices, "0"));
            let parse = |v: &str| v.trim().parse::<f64>().ok().filter(|p| *p >= 0.0).ok_or_else(|| format!("`{v}` in `{item}` is not a price"));
            table.prices.insert(model.trim().to_string(), (parse(input)?, parse(output)?));
        }
        Ok(table)
    }

    /// Estimated cost of one call; unknown models (local servers) cost 0.
    /// Dated model names (`gpt-4o-mini-2024-07-18`) use their family's price.
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        let price = self.prices.get(model).or_else(|| {
            self.prices.iter().filter(|(m, _)| model.starts_with(m.as_str())).max_by_key(|(m, _)| m.len()).map(|(_, p)| p)
        });
        price.map(|(i, o)| (usage.input_tokens as f64 * i + usage.output_tokens as f64 * o) / 1_000_000.0).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_use_the_longest_matching_model_and_overrides() {
        let t = PriceTable::default();
        let u = Usage { input_tokens: 1_000_000, output_tokens: 1_000_000, total_tokens: 2_000_000 };
        assert!((t.cost("gpt-4o-mini-2024-07-18", &u) - 0.75).abs() < 1e-9);
        assert!((t.cost("gpt-4o", &u) - 12.5).abs() < 1e-9);
        assert_eq!(t.cost("llama3", &u), 0.0);
        let t = PriceTable::with_overrides("llama3=1:2, gpt-4o=0:0").unwrap();
        assert!((t.cost("llama3", &u) - 3.0).abs() < 1e-9);
        assert_eq!(t.cost("gpt-4o", &u), 0.0);
        assert!(PriceTable::with_overrides("nonsense").is_err());
        assert!(PriceTable::with_overrides("m=-1:2").is_err());
    }
}

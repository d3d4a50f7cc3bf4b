//! Integers whose bounds live in the type.
//!
//! The same declaration yields the JSON Schema a client sees (`minimum`/`maximum`) and the check
//! that enforces it when a tool argument or a config value is deserialized, so the two can never
//! drift apart.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// An unsigned integer in `MIN..=MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    /// Builds a value, or explains which bound it breaks.
    pub fn new(value: u64) -> Result<Self, OutOfRange> {
        if (MIN..=MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(OutOfRange {
                value,
                min: MIN,
                max: MAX,
            })
        }
    }

    /// For compile-time constants (defaults); panics in a `const` context if out of range.
    pub const fn constant(value: u64) -> Self {
        assert!(value >= MIN && value <= MAX, "constant out of range");
        Self(value)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A value outside its declared bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is out of range: must be between {min} and {max}")]
pub struct OutOfRange {
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl<const MIN: u64, const MAX: u64> fmt::Display for Bounded<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MIN: u64, const MAX: u64> Serialize for Bounded<MIN, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Accept any integer so a negative number gets the range message, not a type error.
        let value = i128::deserialize(deserializer)?;
        let in_u64 = u64::try_from(value).map_err(|_| {
            D::Error::custom(format!(
                "{value} is out of range: must be between {MIN} and {MAX}"
            ))
        })?;
        Self::new(in_u64).map_err(D::Error::custom)
    }
}

impl<const MIN: u64, const MAX: u64> JsonSchema for Bounded<MIN, MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("Bounded_{MIN}_{MAX}").into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": MIN, "maximum": MAX })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Percent = Bounded<0, 100>;

    #[test]
    fn accepts_values_within_bounds() {
        let parsed: Percent = serde_json::from_str("100").expect("in range");
        assert_eq!(parsed.get(), 100);
    }

    #[test]
    fn rejects_values_outside_bounds_with_the_range() {
        let error = serde_json::from_str::<Percent>("101")
            .expect_err("out of range")
            .to_string();
        assert!(error.contains("must be between 0 and 100"), "{error}");
        let error = serde_json::from_str::<Percent>("-1")
            .expect_err("negative")
            .to_string();
        assert!(error.contains("-1 is out of range"), "{error}");
    }

    #[test]
    fn schema_carries_the_bounds() {
        let schema = schemars::schema_for!(Percent);
        assert_eq!(schema.get("minimum"), Some(&serde_json::json!(0)));
        assert_eq!(schema.get("maximum"), Some(&serde_json::json!(100)));
    }
}

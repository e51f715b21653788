//! Sweepable fields: a config field that holds either one value or a list of values. A run
//! covers the cartesian product of every listed field, and each combination is one scenario.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Serialize, Serializer};

/// One value, or the values to sweep over.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep<T>(Vec<T>);

impl<T> Sweep<T> {
    /// A field with a single value.
    pub fn one(value: T) -> Self {
        Self(vec![value])
    }

    /// Every value, in the order written.
    pub fn values(&self) -> &[T] {
        &self.0
    }

    /// Whether more than one value is listed.
    pub fn is_swept(&self) -> bool {
        self.0.len() > 1
    }
}

impl<T: Default> Default for Sweep<T> {
    fn default() -> Self {
        Self::one(T::default())
    }
}

impl<T: Serialize> Serialize for Sweep<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Sweep<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SweepVisitor<T>(std::marker::PhantomData<T>);

        macro_rules! forward_scalar {
            ($method:ident, $ty:ty, $de:ident) => {
                fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
                    let deserializer: de::value::$de<E> = value.into_deserializer();
                    T::deserialize(deserializer).map(Sweep::one)
                }
            };
        }

        impl<'de, T: DeserializeOwned> Visitor<'de> for SweepVisitor<T> {
            type Value = Sweep<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value, or a list of values to sweep over")
            }

            forward_scalar!(visit_bool, bool, BoolDeserializer);
            forward_scalar!(visit_i64, i64, I64Deserializer);
            forward_scalar!(visit_u64, u64, U64Deserializer);
            forward_scalar!(visit_f64, f64, F64Deserializer);

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                let deserializer: de::value::StrDeserializer<E> = value.into_deserializer();
                T::deserialize(deserializer).map(Sweep::one)
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                self.visit_str(&value)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element::<T>()? {
                    values.push(value);
                }
                if values.is_empty() {
                    return Err(de::Error::custom("an empty list sweeps over nothing"));
                }
                Ok(Sweep(values))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Sweep::one)
            }
        }

        deserializer.deserialize_any(SweepVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Scheme {
        Counter,
        Timestamp,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Backoff {
        base_us: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields {
        scheme: Sweep<Scheme>,
        proposers: Sweep<u32>,
        rate: Sweep<f64>,
        backoff: Sweep<Backoff>,
    }

    #[test]
    fn single_values_and_lists_parse() {
        let fields: Fields = serde_saphyr::from_str(
            "scheme: counter\nproposers: [1, 4, 16]\nrate: 2.5\nbackoff:\n  - base_us: 1\n  - base_us: 2\n",
        )
        .unwrap();
        assert_eq!(fields.scheme.values(), &[Scheme::Counter]);
        assert_eq!(fields.proposers.values(), &[1, 4, 16]);
        assert_eq!(fields.rate.values(), &[2.5]);
        assert_eq!(fields.backoff.values().len(), 2);
        let one: Fields = serde_saphyr::from_str(
            "scheme: [counter, timestamp]\nproposers: 2\nrate: 1\nbackoff: {base_us: 5}\n",
        )
        .unwrap();
        assert_eq!(one.scheme.values(), &[Scheme::Counter, Scheme::Timestamp]);
        assert_eq!(one.backoff.values(), &[Backoff { base_us: 5 }]);
    }

    #[test]
    fn bad_values_inside_a_list_are_located() {
        let err = serde_saphyr::from_str::<Fields>(
            "scheme: [counter, sundial]\nproposers: 1\nrate: 1\nbackoff: {base_us: 1}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 1") && err.contains("sundial"), "{err}");
        let err = serde_saphyr::from_str::<Fields>(
            "scheme: counter\nproposers: 1\nrate: 1\nbackoff: {base_ms: 1}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 4") && err.contains("base_ms"), "{err}");
    }
}

//! Short labels for config values (`counter`, `8`, `full-jitter:0.2-50ms`, `zipfian:0.99`):
//! how a swept field names its value in scenario names, tables and charts.

use serde::Serialize;

/// A value as a short label: `counter`, `8`, `full-jitter:0.2-50ms`, `zipfian:0.99`.
pub(crate) fn display_value<T: Serialize>(value: &T) -> String {
    fn compact(value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(map) => {
                // A backoff: its policy, then its delays.
                if let Some(serde_json::Value::String(policy)) = map.get("policy") {
                    let ms = |k: &str| {
                        map.get(k)
                            .and_then(serde_json::Value::as_f64)
                            .unwrap_or(0.0)
                    };
                    return match policy.as_str() {
                        "none" => "none".into(),
                        "constant" => format!("constant:{}ms", ms("base_ms")),
                        _ => format!("{policy}:{}-{}ms", ms("base_ms"), ms("cap_ms")),
                    };
                }
                // CPU pins: `unpinned`, `generator:0`, or `generator:0/nodes:1+2`.
                if let (Some(generator), Some(nodes)) = (map.get("generator"), map.get("nodes")) {
                    let cpus = |v: &serde_json::Value| {
                        v.as_array()
                            .map(|a| a.iter().map(compact).collect::<Vec<_>>().join("+"))
                            .unwrap_or_default()
                    };
                    let parts: Vec<String> =
                        [("generator", cpus(generator)), ("nodes", cpus(nodes))]
                            .into_iter()
                            .filter(|(_, list)| !list.is_empty())
                            .map(|(who, list)| format!("{who}:{list}"))
                            .collect();
                    return if parts.is_empty() {
                        "unpinned".into()
                    } else {
                        parts.join("/")
                    };
                }
                // An externally tagged enum (`{zipfian: {theta: 0.99}}`): the tag, then the values.
                map.iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::Object(inner) => format!(
                            "{k}:{}",
                            inner.values().map(compact).collect::<Vec<_>>().join("/")
                        ),
                        other => format!("{k}:{}", compact(other)),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            }
            other => other.to_string(),
        }
    }
    serde_json::to_value(value).map_or_else(|_| "?".into(), |v| compact(&v))
}

//! Locating a dotted field (`workload.rate`) in the YAML text, for errors found after parsing.

/// The line and column of `field` (a dotted path such as `workload.rate`) in block-style YAML,
/// for errors found after parsing. Falls back to the closest parent that is written.
pub fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    let mut found = None;
    let mut path: Vec<(usize, String)> = Vec::new();
    let wanted: Vec<&str> = field.split('.').collect();
    let mut best_depth = 0;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        while path.last().is_some_and(|(i, _)| *i >= indent) {
            path.pop();
        }
        path.push((indent, key.trim().to_string()));
        let depth = path
            .iter()
            .zip(&wanted)
            .take_while(|((_, k), w)| k == *w)
            .count();
        if depth == path.len() && depth > best_depth {
            best_depth = depth;
            found = Some((number + 1, indent + 1));
            if depth == wanted.len() {
                break;
            }
        }
    }
    found
}

//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and the few field
//! selectors the API server supports for Secrets (`metadata.name`,
//! `metadata.namespace`, `type`).

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

#[derive(Debug, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Default)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub(crate) fn parse(text: &str) -> Result<LabelSelector, String> {
        split_top_level(text)
            .into_iter()
            .filter(|term| !term.trim().is_empty())
            .map(|term| parse_requirement(term.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &Value) -> bool {
        self.0.iter().all(|req| {
            let value = labels.get(&req.key).and_then(Value::as_str);
            match &req.op {
                Op::In(values) => value.is_some_and(|v| values.iter().any(|x| x == v)),
                // `!=` and `notin` also match objects without the label, as in Kubernetes.
                Op::NotIn(values) => !value.is_some_and(|v| values.iter().any(|x| x == v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// Splits on commas that are not inside `( )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut terms) = (0, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let requirement = |key: &str, op| Requirement {
        key: key.trim().to_string(),
        op,
    };
    if let Some(key) = term.strip_prefix('!') {
        return Ok(requirement(key, Op::DoesNotExist));
    }
    if let Some(open) = term.find('(') {
        let close = term
            .rfind(')')
            .ok_or_else(|| format!("unable to parse requirement: missing ')' in {term:?}"))?;
        let mut words = term[..open].split_whitespace();
        let (key, op) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let values: Vec<String> = term[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        return match op {
            "in" => Ok(requirement(key, Op::In(values))),
            "notin" => Ok(requirement(key, Op::NotIn(values))),
            _ => Err(format!(
                "unable to parse requirement: found '{op}', expected: in, notin"
            )),
        };
    }
    for (token, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = term.split_once(token) {
            let values = vec![value.trim().to_string()];
            let op = if negate {
                Op::NotIn(values)
            } else {
                Op::In(values)
            };
            return Ok(requirement(key, op));
        }
    }
    if term.contains(['<', '>']) {
        return Err(format!(
            "unable to parse requirement: operator in {term:?} is not supported by the kube double"
        ));
    }
    Ok(requirement(term, Op::Exists))
}

/// A field selector over the fields Secrets support.
#[derive(Debug, Default)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub(crate) fn parse(text: &str, supported: &[&str]) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            if !supported.contains(&field.trim()) {
                return Err(format!("field label not supported: {}", field.trim()));
            }
            terms.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = field
                .split('.')
                .fold(object, |v, part| &v[part])
                .as_str()
                .unwrap_or("");
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(selector: &str, labels: Value) -> bool {
        LabelSelector::parse(selector).unwrap().matches(&labels)
    }

    #[test]
    fn label_operators_behave_as_in_kubernetes() {
        let labels = json!({"app": "shop", "tier": "web"});
        assert!(matches("app=shop", labels.clone()));
        assert!(matches("app==shop,tier", labels.clone()));
        assert!(!matches("app!=shop", labels.clone()));
        assert!(matches("missing!=x", labels.clone()));
        assert!(matches("tier in (web, db)", labels.clone()));
        assert!(!matches("tier notin (web)", labels.clone()));
        assert!(matches("missing notin (web)", labels.clone()));
        assert!(matches("!missing", labels.clone()));
        assert!(!matches("!app", labels.clone()));
        assert!(matches("", labels));
        assert!(LabelSelector::parse("a foo (b)").is_err());
    }

    #[test]
    fn field_selectors() {
        let secret = json!({"metadata": {"name": "a", "namespace": "n"}, "type": "Opaque"});
        let supported = ["metadata.name", "metadata.namespace", "type"];
        let sel = FieldSelector::parse("metadata.name=a,type!=kubernetes.io/tls", &supported);
        assert!(sel.unwrap().matches(&secret));
        assert!(FieldSelector::parse("spec.x=1", &supported).is_err());
    }
}

//! InfluxDB line protocol: the one encoding of a point, shared by the InfluxDB and the file
//! sink, and a strict parser of it (tests, and any reader of a metrics file).
//!
//! `measurement,tag=value,... field=value,... timestamp_ns`. Integers carry an `i` suffix,
//! floats are plain decimals; measurement, tag keys, tag values and field keys escape `,`,
//! `=` and space with a backslash (the measurement only `,` and space).

use std::fmt::Write as _;

/// A field value as line protocol types it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    /// The value as a float, whatever its numeric type (None for booleans and strings).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Float(v) => Some(*v),
            FieldValue::Int(v) => Some(*v as f64),
            FieldValue::UInt(v) => Some(*v as f64),
            FieldValue::Bool(_) | FieldValue::Str(_) => None,
        }
    }
}

/// Append `s` to `out`, escaping the characters listed in `special` with a backslash.
fn escape(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

const KEY_SPECIAL: &[char] = &[',', '=', ' '];
const MEASUREMENT_SPECIAL: &[char] = &[',', ' '];

/// `,k=v,k=v` for tags, escaped, to put after a measurement. Empty values are left out: line
/// protocol has no empty tag value.
pub fn encode_tags(tags: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in tags {
        if v.is_empty() {
            continue;
        }
        out.push(',');
        escape(&mut out, k, KEY_SPECIAL);
        out.push('=');
        escape(&mut out, v, KEY_SPECIAL);
    }
    out
}

/// One line (without the newline): `measurement` + pre-encoded `tags` (see [`encode_tags`])
/// + `extra_tags` + `fields` + `timestamp_ns`. Non-finite floats are written as 0, since line
///   protocol cannot carry them.
pub fn encode(
    measurement: &str,
    tags: &str,
    extra_tags: &[(&str, &str)],
    fields: &[(&str, FieldValue)],
    timestamp_ns: i64,
) -> String {
    let mut out = String::with_capacity(160);
    escape(&mut out, measurement, MEASUREMENT_SPECIAL);
    out.push_str(tags);
    out.push_str(&encode_tags(extra_tags));
    for (i, (key, value)) in fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape(&mut out, key, KEY_SPECIAL);
        out.push('=');
        match value {
            FieldValue::Float(v) => {
                let v = if v.is_finite() { *v } else { 0.0 };
                let _ = write!(out, "{v}");
            }
            FieldValue::Int(v) => {
                let _ = write!(out, "{v}i");
            }
            FieldValue::UInt(v) => {
                let _ = write!(out, "{v}u");
            }
            FieldValue::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
            FieldValue::Str(v) => {
                out.push('"');
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    let _ = write!(out, " {timestamp_ns}");
    out
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, FieldValue)>,
    pub timestamp_ns: Option<i64>,
}

impl Line {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn field(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Parse one line of line protocol as InfluxDB 2 would accept it: a measurement, optional
/// tags, at least one field, an optional integer timestamp. Errors say what is wrong.
pub fn parse(line: &str) -> Result<Line, String> {
    let mut p = Cursor { s: line, pos: 0 };
    let measurement = p.token(&[',', ' '])?;
    if measurement.is_empty() {
        return Err("empty measurement".into());
    }
    let mut tags = Vec::new();
    while p.peek() == Some(',') {
        p.pos += 1;
        let key = p.token(&['=', ',', ' '])?;
        p.expect('=')?;
        let value = p.token(&[',', ' ', '='])?;
        if key.is_empty() || value.is_empty() {
            return Err(format!("empty tag key or value at byte {}", p.pos));
        }
        tags.push((key, value));
    }
    p.expect(' ')?;
    let mut fields = Vec::new();
    loop {
        let key = p.token(&['=', ',', ' '])?;
        if key.is_empty() {
            return Err(format!("empty field key at byte {}", p.pos));
        }
        p.expect('=')?;
        let value = p.field_value()?;
        fields.push((key, value));
        match p.peek() {
            Some(',') => p.pos += 1,
            _ => break,
        }
    }
    let timestamp_ns = match p.peek() {
        None => None,
        Some(' ') => {
            p.pos += 1;
            let rest = &p.s[p.pos..];
            Some(
                rest.parse::<i64>()
                    .map_err(|_| format!("bad timestamp {rest:?}"))?,
            )
        }
        Some(c) => return Err(format!("unexpected {c:?} at byte {}", p.pos)),
    };
    Ok(Line {
        measurement,
        tags,
        fields,
        timestamp_ns,
    })
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.peek() {
            Some(got) if got == c => {
                self.pos += c.len_utf8();
                Ok(())
            }
            got => Err(format!("expected {c:?} at byte {}, got {got:?}", self.pos)),
        }
    }

    /// Read up to an unescaped character of `stop` (or the end), unescaping `\x`.
    fn token(&mut self, stop: &[char]) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some((_, next)) => out.push(next),
                    None => return Err("dangling backslash".into()),
                }
            } else if stop.contains(&c) {
                self.pos += i;
                return Ok(out);
            } else if c == '\n' {
                return Err("newline inside a line".into());
            } else {
                out.push(c);
            }
        }
        self.pos = self.s.len();
        Ok(out)
    }

    fn field_value(&mut self) -> Result<FieldValue, String> {
        if self.peek() == Some('"') {
            self.pos += 1;
            let mut out = String::new();
            let mut chars = self.s[self.pos..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, next)) => out.push(next),
                        None => return Err("dangling backslash in a string".into()),
                    },
                    '"' => {
                        self.pos += i + 1;
                        return Ok(FieldValue::Str(out));
                    }
                    _ => out.push(c),
                }
            }
            return Err("unterminated string field".into());
        }
        let raw = self.token(&[',', ' '])?;
        let value = if let Some(int) = raw.strip_suffix('i') {
            int.parse().map(FieldValue::Int).ok()
        } else if let Some(uint) = raw.strip_suffix('u') {
            uint.parse().map(FieldValue::UInt).ok()
        } else {
            match raw.as_str() {
                "t" | "T" | "true" | "True" | "TRUE" => Some(FieldValue::Bool(true)),
                "f" | "F" | "false" | "False" | "FALSE" => Some(FieldValue::Bool(false)),
                _ => raw
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && !raw.contains(['n', 'N', 'x', 'X']))
                    .map(FieldValue::Float),
            }
        };
        value.ok_or_else(|| format!("bad field value {raw:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_point_parses_back_to_the_same_values() {
        let tags = encode_tags(&[("service", "gateway"), ("run_id", "r 1,x=y")]);
        let line = encode(
            "http",
            &tags,
            &[("route", "/api/carts/{id}/items"), ("method", "POST")],
            &[
                ("requests", FieldValue::Int(412)),
                ("p95_ms", FieldValue::Float(4.8)),
                ("max_ms", FieldValue::Float(f64::NAN)),
            ],
            1_763_900_000_000_000_000,
        );
        let parsed = parse(&line).expect("parses");
        assert_eq!(parsed.measurement, "http");
        assert_eq!(parsed.tag("run_id"), Some("r 1,x=y"));
        assert_eq!(parsed.tag("route"), Some("/api/carts/{id}/items"));
        assert_eq!(parsed.field("requests"), Some(&FieldValue::Int(412)));
        assert_eq!(parsed.field("p95_ms"), Some(&FieldValue::Float(4.8)));
        assert_eq!(parsed.field("max_ms"), Some(&FieldValue::Float(0.0)));
        assert_eq!(parsed.timestamp_ns, Some(1_763_900_000_000_000_000));
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for bad in [
            "",
            "m",
            "m f=",
            "m,t f=1",
            "m,t= f=1",
            "m f=1 notatime",
            "m f=abc",
            "m f=\"open",
            "m f=1i,g=NaN",
            "m f=1\nm f=2",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
        for good in ["m f=1", "m,t=a f=1i,g=2.5,h=t,s=\"x y\" 12", "m f=3u 0"] {
            assert!(parse(good).is_ok(), "rejected {good:?}: {:?}", parse(good));
        }
    }
}

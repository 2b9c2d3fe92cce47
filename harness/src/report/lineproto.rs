//! A reader of InfluxDB line protocol, as the services write it (docs/metrics.md):
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//!
//! Escaping follows InfluxDB: in the measurement a backslash escapes commas and spaces; in tag
//! keys, tag values and field keys it escapes commas, equals signs and spaces. String field
//! values are double-quoted with `\"` and `\\` escapes. Integers end in `i`, unsigned integers
//! in `u`; booleans are `t`/`true`/`f`/`false` in any of InfluxDB's spellings. Blank lines and
//! lines starting with `#` are skipped. Anything else is an error naming the line and column.
//!
//! [`format_line`] and [`write_file`] write points back in the same format, with the
//! services' own encoder (`common::metrics::line`).

use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;

/// The field value type the services write with (`common::metrics::line`).
pub use common::metrics::line::FieldValue;

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, FieldValue>,
    /// Nanoseconds since the Unix epoch, when the line has one.
    pub timestamp: Option<i64>,
}

impl Point {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    pub fn number(&self, field: &str) -> Option<f64> {
        self.fields.get(field).and_then(FieldValue::as_f64)
    }
}

/// A line that is not line protocol: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every point of `text`; the first malformed line is an error.
pub fn parse(text: &str) -> Result<Vec<Point>, ParseError> {
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(p) = parse_line(line).map_err(|(column, message)| ParseError {
            line: i + 1,
            column,
            message,
        })? {
            points.push(p);
        }
    }
    Ok(points)
}

/// The points of one file. A last line without its newline that does not parse is a write
/// torn by a killed process and is left out; any other bad line is an error.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<Point>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let complete = match text.rfind('\n') {
        Some(end) if end + 1 < text.len() => match parse_line(&text[end + 1..]) {
            Ok(_) => &text[..],
            Err(_) => &text[..=end],
        },
        Some(_) => &text[..],
        None => match parse_line(&text) {
            Ok(_) => &text[..],
            Err(_) => "",
        },
    };
    parse(complete).with_context(|| format!("parsing {}", path.display()))
}

/// The points of every `*.lp` file in `dir` (none when it does not exist), files in name order.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<Point>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lp"))
        .collect();
    files.sort();
    let mut points = Vec::new();
    for file in files {
        points.extend(read_file(&file)?);
    }
    Ok(points)
}

/// `p` as one line (no newline), escaped as the services write theirs. Tags in name order,
/// fields in name order; a point without a timestamp gets none.
pub fn format_line(p: &Point) -> String {
    use common::metrics::line::{encode, encode_tags};
    let tags: Vec<(&str, &str)> = p
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let fields: Vec<(&str, FieldValue)> = p
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let mut line = encode(
        &p.measurement,
        &encode_tags(&tags),
        &[],
        &fields,
        p.timestamp.unwrap_or(0),
    );
    if p.timestamp.is_none() {
        // The encoder always ends with ` <timestamp>`.
        line.truncate(line.rfind(' ').unwrap_or(line.len()));
    }
    line
}

/// Write `points` to `path`, one line each, replacing the file.
pub fn write_file(path: &Path, points: &[Point]) -> anyhow::Result<()> {
    let mut text = String::new();
    for p in points {
        text.push_str(&format_line(p));
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

type LineResult<T> = Result<T, (usize, String)>;

/// One line: `Ok(None)` for a blank line or a comment; `Err((column, message))` (1-based).
pub fn parse_line(line: &str) -> LineResult<Option<Point>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut c = Cursor {
        chars: line.chars().collect(),
        pos: line.chars().count() - trimmed.chars().count(),
    };

    let measurement = c.read_escaped(&[',', ' '], &[',', ' ']);
    if measurement.is_empty() {
        return Err(c.err("missing measurement name"));
    }
    let mut tags = BTreeMap::new();
    while c.peek() == Some(',') {
        c.pos += 1;
        let key = c.read_escaped(&[',', '=', ' '], &[',', '=', ' ']);
        if key.is_empty() {
            return Err(c.err("empty tag key"));
        }
        if c.peek() != Some('=') {
            return Err(c.err(&format!("tag {key:?} has no '=value'")));
        }
        c.pos += 1;
        let value = c.read_escaped(&[',', '=', ' '], &[',', '=', ' ']);
        if value.is_empty() {
            return Err(c.err(&format!("tag {key:?} has an empty value")));
        }
        tags.insert(key, value);
    }
    if c.peek() != Some(' ') {
        return Err(c.err("expected a space before the fields"));
    }
    c.skip_spaces();

    let mut fields = BTreeMap::new();
    loop {
        let key = c.read_escaped(&[',', '=', ' '], &[',', '=', ' ']);
        if key.is_empty() {
            return Err(c.err("missing field key"));
        }
        if c.peek() != Some('=') {
            return Err(c.err(&format!("field {key:?} has no '=value'")));
        }
        c.pos += 1;
        let value = c.read_field_value()?;
        fields.insert(key, value);
        match c.peek() {
            Some(',') => c.pos += 1,
            _ => break,
        }
    }

    let timestamp = match c.peek() {
        None => None,
        Some(' ') => {
            c.skip_spaces();
            if c.peek().is_none() {
                None
            } else {
                let start = c.pos;
                let text: String = c.take_while(|ch| ch != ' ');
                let ts = text
                    .parse::<i64>()
                    .map_err(|_| (start + 1, format!("timestamp {text:?} is not an integer")))?;
                c.skip_spaces();
                if c.peek().is_some() {
                    return Err(c.err("unexpected text after the timestamp"));
                }
                Some(ts)
            }
        }
        Some(other) => return Err(c.err(&format!("unexpected {other:?} after the fields"))),
    };
    Ok(Some(Point {
        measurement,
        tags,
        fields,
        timestamp,
    }))
}

struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn err(&self, message: &str) -> (usize, String) {
        (self.pos + 1, message.to_string())
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// Read up to an unescaped character of `stop`; a backslash before one of `escapable`
    /// stands for that character, any other backslash is kept as it is.
    fn read_escaped(&mut self, stop: &[char], escapable: &[char]) -> String {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if ch == '\\' {
                if let Some(next) = self.chars.get(self.pos + 1).copied() {
                    if escapable.contains(&next) || next == '\\' {
                        out.push(next);
                        self.pos += 2;
                        continue;
                    }
                }
                out.push(ch);
                self.pos += 1;
                continue;
            }
            if stop.contains(&ch) {
                break;
            }
            out.push(ch);
            self.pos += 1;
        }
        out
    }

    fn read_field_value(&mut self) -> LineResult<FieldValue> {
        let start = self.pos;
        if self.peek() == Some('"') {
            self.pos += 1;
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => return Err((start + 1, "unterminated string field".into())),
                    Some('\\') => match self.chars.get(self.pos + 1).copied() {
                        Some(next @ ('"' | '\\')) => {
                            out.push(next);
                            self.pos += 2;
                        }
                        _ => {
                            out.push('\\');
                            self.pos += 1;
                        }
                    },
                    Some('"') => {
                        self.pos += 1;
                        return Ok(FieldValue::Str(out));
                    }
                    Some(ch) => {
                        out.push(ch);
                        self.pos += 1;
                    }
                }
            }
        }
        let text = self.take_while(|ch| ch != ',' && ch != ' ');
        let bad = |what: &str| (start + 1, format!("field value {text:?} is not {what}"));
        if text.is_empty() {
            return Err((start + 1, "empty field value".into()));
        }
        match text.as_str() {
            "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
            "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
            _ => {}
        }
        if let Some(int) = text.strip_suffix('i') {
            return int
                .parse::<i64>()
                .map(FieldValue::Int)
                .map_err(|_| bad("an integer"));
        }
        if let Some(uint) = text.strip_suffix('u') {
            return uint
                .parse::<u64>()
                .map(FieldValue::UInt)
                .map_err(|_| bad("an unsigned integer"));
        }
        let looks_numeric = text
            .chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | '-' | '+' | 'e' | 'E'));
        match text.parse::<f64>() {
            Ok(v) if looks_numeric && v.is_finite() => Ok(FieldValue::Float(v)),
            _ => Err(bad("a number, a boolean or a quoted string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Point {
        parse_line(line)
            .expect("parses")
            .expect("a point, not a blank line")
    }

    #[test]
    fn the_schema_example_lines_parse() {
        let text = "process,service=gateway,instance=gateway-0,mode=sync,run_id=r1 cpu_percent=37.5,cpu_percent_normalized=18.75,rss_bytes=14237696i,dropped_points=0i 1763900000000000000\n\
http,service=gateway,instance=gateway-0,mode=sync,run_id=r1,route=/api/carts,method=POST requests=412i,errors=0i,p50_ms=1.2,p95_ms=4.8,max_ms=11.0 1763900000000000000\n";
        let points = parse(text).expect("parses");
        assert_eq!(points.len(), 2);
        let p = &points[0];
        assert_eq!(p.measurement, "process");
        assert_eq!(p.tag("instance"), Some("gateway-0"));
        assert_eq!(p.fields["cpu_percent"], FieldValue::Float(37.5));
        assert_eq!(p.fields["rss_bytes"], FieldValue::Int(14_237_696));
        assert_eq!(p.timestamp, Some(1_763_900_000_000_000_000));
        assert_eq!(points[1].tag("route"), Some("/api/carts"));
        assert_eq!(points[1].number("p95_ms"), Some(4.8));
    }

    #[test]
    fn escaped_spaces_commas_and_equals_signs_are_part_of_names_and_values() {
        let p = one(
            r#"my\ measure\,x,route=/api/carts/{id}/items,label=a\ b\,c\=d,k\=ey=v count=1i,note="say \"hi\" \\ bye" 5"#,
        );
        assert_eq!(p.measurement, "my measure,x");
        assert_eq!(p.tag("label"), Some("a b,c=d"));
        assert_eq!(p.tag("k=ey"), Some("v"));
        assert_eq!(p.tag("route"), Some("/api/carts/{id}/items"));
        assert_eq!(
            p.fields["note"],
            FieldValue::Str(r#"say "hi" \ bye"#.to_string())
        );
        assert_eq!(p.timestamp, Some(5));
    }

    #[test]
    fn integers_unsigned_floats_and_booleans_are_told_apart() {
        let p = one("m a=1i,b=2u,c=3,d=-4.5e1,e=t,f=FALSE,g=-7i");
        assert_eq!(p.fields["a"], FieldValue::Int(1));
        assert_eq!(p.fields["b"], FieldValue::UInt(2));
        assert_eq!(p.fields["c"], FieldValue::Float(3.0));
        assert_eq!(p.fields["d"], FieldValue::Float(-45.0));
        assert_eq!(p.fields["e"], FieldValue::Bool(true));
        assert_eq!(p.fields["f"], FieldValue::Bool(false));
        assert_eq!(p.fields["g"], FieldValue::Int(-7));
        assert_eq!(p.timestamp, None);
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        let points = parse("# written by gateway-0\n\n   \nm v=1 1\n").expect("parses");
        assert_eq!(points.len(), 1);
    }

    #[test]
    fn garbage_is_rejected_with_its_line_and_what_is_wrong() {
        let cases = [
            ("m", "expected a space before the fields"),
            ("m v", "has no '=value'"),
            ("m v=", "empty field value"),
            ("m v=abc", "is not a number"),
            ("m v=1x", "is not a number"),
            ("m v=12.5i", "is not an integer"),
            ("m,tag v=1", "has no '=value'"),
            ("m,tag= v=1", "empty value"),
            ("m v=1 notatime", "is not an integer"),
            ("m v=\"open", "unterminated string"),
            ("m v=1 1 2", "after the timestamp"),
            (",t=1 v=1", "missing measurement"),
            ("m v=NaN", "is not a number"),
        ];
        for (line, expected) in cases {
            let text = format!("m ok=1 1\n{line}\n");
            let err = parse(&text).expect_err(line);
            assert_eq!(err.line, 2, "{line}");
            assert!(
                err.to_string().contains(expected),
                "{line:?}: {err} should say {expected:?}"
            );
        }
    }

    #[test]
    fn written_points_read_back_the_same() {
        let points = parse(
            "process,service=gateway,instance=gateway-0,mode=sync,run_id=r1 cpu_percent=37.5,rss_bytes=14237696i,n=3u,ok=true 1763900000000000000\n\
docker_container_cpu,com.docker.compose.service=order,cpu=cpu-total,label=a\\ b\\,c\\=d usage_percent=0.000125 1\n\
my\\ m\\,x note=\"say \\\"hi\\\" \\\\ bye\",f=-1e-7,g=1e21\n",
        )
        .expect("parses");
        assert_eq!(points.len(), 3);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.lp");
        write_file(&path, &points).expect("writes");
        assert_eq!(read_file(&path).expect("reads back"), points);
        assert_eq!(
            format_line(&points[0]),
            "process,instance=gateway-0,mode=sync,run_id=r1,service=gateway cpu_percent=37.5,n=3u,ok=true,rss_bytes=14237696i 1763900000000000000"
        );
        assert_eq!(points[2].timestamp, None);
        assert_eq!(points[2].fields["g"], FieldValue::Float(1e21));
    }

    #[test]
    fn a_torn_last_line_is_left_out_but_torn_lines_inside_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let torn = dir.path().join("a.lp");
        std::fs::write(&torn, "m v=1 1\nm v=2 2\nm v=").expect("write");
        assert_eq!(read_file(&torn).expect("reads").len(), 2);
        let bad = dir.path().join("b.lp");
        std::fs::write(&bad, "m v=1 1\nm v=\nm v=2 2\n").expect("write");
        let err = format!("{:#}", read_file(&bad).expect_err("bad middle line"));
        assert!(err.contains("b.lp") && err.contains("line 2"), "{err}");
    }
}

//! One pass over a packet's JSON data array: checks its syntax (RFC 8259) and nesting depth,
//! and finds where each element lies, without building anything.
//!
//! The decoder used to run three passes for this (a depth scan, serde_json's parse into a
//! list of raw values, and, when the server sent an argument on, serde_json again to check it
//! before writing it verbatim). This scanner accepts exactly the texts serde_json accepts as
//! a JSON value (its `ignore` rules: any `\u` escape of four hex digits, numbers of any
//! size), and also tells whether an element holds whitespace outside its strings, so that
//! an argument can later be written out verbatim, without a second look, when it has none.

use std::borrow::Cow;
use std::ops::Range;

use super::{ArgRanges, MAX_DEPTH};

/// Why the data is not a JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// Not JSON.
    Invalid,
    /// Valid JSON, but not an array.
    NotArray,
    /// Arrays and objects nest deeper than [`MAX_DEPTH`] (the data array counts as one).
    TooDeep,
}

/// A JSON array's elements.
#[derive(Debug)]
pub(crate) struct Elements {
    /// Where each element lies in the scanned text, without surrounding whitespace.
    pub(crate) ranges: ArgRanges,
    /// No element holds whitespace outside its strings: each is already compact JSON.
    pub(crate) compact: bool,
}

/// Scans `data`, which must be one JSON array (whitespace around it allowed).
pub(crate) fn scan_array(data: &str) -> Result<Elements, ScanError> {
    let mut scanner = Scanner {
        bytes: data.as_bytes(),
        pos: 0,
        compact: true,
    };
    scanner.skip_space();
    if scanner.peek() != Some(b'[') {
        // Valid JSON that is no array, or not JSON at all.
        scanner.value(1)?;
        scanner.skip_space();
        return Err(if scanner.at_end() {
            ScanError::NotArray
        } else {
            ScanError::Invalid
        });
    }
    scanner.pos += 1;
    let mut ranges = ArgRanges::new();
    scanner.skip_space();
    if scanner.peek() == Some(b']') {
        scanner.pos += 1;
    } else {
        loop {
            let start = scanner.pos;
            scanner.value(2)?;
            ranges.push(start..scanner.pos);
            scanner.skip_space();
            match scanner.next() {
                Some(b',') => scanner.skip_space(),
                Some(b']') => break,
                _ => return Err(ScanError::Invalid),
            }
        }
    }
    scanner.skip_space();
    if !scanner.at_end() {
        return Err(ScanError::Invalid);
    }
    Ok(Elements {
        ranges,
        compact: scanner.compact,
    })
}

/// `json` (valid JSON text) without whitespace outside its strings; borrowed when it has
/// none. The arguments of a packet the decoder did not find compact are written out so.
pub fn compact_json(json: &str) -> Cow<'_, str> {
    let mut out: Option<Vec<u8>> = None;
    let mut strings = Strings::default();
    // Bytewise: every byte looked at is ASCII, and UTF-8 sequences pass through whole.
    for (i, &b) in json.as_bytes().iter().enumerate() {
        let keep = strings.holds(b) || !is_space(b);
        match (&mut out, keep) {
            (Some(out), true) => out.push(b),
            (None, false) => out = Some(json.as_bytes()[..i].to_vec()),
            _ => {}
        }
    }
    match out {
        // Only ASCII whitespace was left out, so the text is still UTF-8.
        Some(out) => Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| json.to_owned())),
        None => Cow::Borrowed(json),
    }
}

/// Follows the strings of JSON text read byte by byte, for scans that only need to skip them
/// (`compact_json`, the decoder's depth check).
#[derive(Default)]
pub(crate) struct Strings {
    inside: bool,
    escaped: bool,
}

impl Strings {
    /// Whether `b`, the next byte, belongs to a string, its quotes included.
    pub(crate) fn holds(&mut self, b: u8) -> bool {
        if self.inside {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.inside = false;
            }
            true
        } else if b == b'"' {
            self.inside = true;
            true
        } else {
            false
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    compact: bool,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Skips whitespace between the array's elements: it does not make an element loose.
    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// Skips whitespace inside an element.
    fn skip_inner_space(&mut self) {
        let start = self.pos;
        self.skip_space();
        if self.pos != start {
            self.compact = false;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), ScanError> {
        if self.next() == Some(b) {
            Ok(())
        } else {
            Err(ScanError::Invalid)
        }
    }

    /// One value at nesting level `depth` (the level a container here would open).
    fn value(&mut self, depth: usize) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(ScanError::Invalid),
        }
    }

    fn open(&mut self, depth: usize) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(ScanError::TooDeep);
        }
        self.pos += 1;
        self.skip_inner_space();
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), ScanError> {
        self.open(depth)?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            self.skip_inner_space();
            match self.next() {
                Some(b',') => self.skip_inner_space(),
                Some(b']') => return Ok(()),
                _ => return Err(ScanError::Invalid),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), ScanError> {
        self.open(depth)?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(ScanError::Invalid);
            }
            self.string()?;
            self.skip_inner_space();
            self.expect(b':')?;
            self.skip_inner_space();
            self.value(depth + 1)?;
            self.skip_inner_space();
            match self.next() {
                Some(b',') => self.skip_inner_space(),
                Some(b'}') => return Ok(()),
                _ => return Err(ScanError::Invalid),
            }
        }
    }

    /// A string, from its opening quote: escapes checked, no raw control characters. The
    /// text is a `&str`, so the bytes between are UTF-8 already.
    fn string(&mut self) -> Result<(), ScanError> {
        self.pos += 1;
        loop {
            let rest = self.bytes.get(self.pos..).unwrap_or_default();
            let Some(i) = rest.iter().position(|&b| ENDS_PLAIN_TEXT[usize::from(b)]) else {
                return Err(ScanError::Invalid);
            };
            self.pos += i;
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.next() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        for _ in 0..4 {
                            if !self.next().is_some_and(|b| b.is_ascii_hexdigit()) {
                                return Err(ScanError::Invalid);
                            }
                        }
                    }
                    _ => return Err(ScanError::Invalid),
                },
                // A control character.
                _ => return Err(ScanError::Invalid),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(ScanError::Invalid)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(ScanError::Invalid),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), ScanError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            Err(ScanError::Invalid)
        } else {
            Ok(())
        }
    }
}

/// The ranges of `data`'s elements, shifted to where `data` starts in the packet.
pub(crate) fn shifted(ranges: &mut ArgRanges, offset: usize) {
    for range in ranges.iter_mut() {
        *range = Range {
            start: range.start + offset,
            end: range.end + offset,
        };
    }
}

/// The bytes that end the plain text of a JSON string: its closing quote, an escape, or a
/// control character (never allowed unescaped). One table lookup per byte.
const ENDS_PLAIN_TEXT: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn has_space_outside_strings(json: &str) -> bool {
        matches!(compact_json(json), std::borrow::Cow::Owned(_))
    }

    fn elements(data: &str) -> (Vec<&str>, bool) {
        let scanned = scan_array(data).unwrap_or_else(|e| panic!("{data:?}: {e:?}"));
        let texts = scanned.ranges.iter().map(|r| &data[r.clone()]).collect();
        (texts, scanned.compact)
    }

    #[test]
    fn finds_the_elements() {
        assert_eq!(elements("[]"), (vec![], true));
        assert_eq!(elements(" [ ] "), (vec![], true));
        assert_eq!(
            elements(r#"["echo",{"msg":"hello world","n":42}]"#),
            (vec![r#""echo""#, r#"{"msg":"hello world","n":42}"#], true)
        );
        assert_eq!(
            elements(" [ 1 , \"a\" ,null,true,false,-0.5e+3 ] "),
            (vec!["1", "\"a\"", "null", "true", "false", "-0.5e+3"], true)
        );
        assert_eq!(
            elements(r#"[[1,[2,{}]],{"a":{"b":[]}}]"#),
            (vec!["[1,[2,{}]]", r#"{"a":{"b":[]}}"#], true)
        );
        assert_eq!(
            elements(r#"["\"\\\/\b\f\n\r\t\u00e9\uD83D\ude00", "é😀"]"#),
            (
                vec![r#""\"\\\/\b\f\n\r\t\u00e9\uD83D\ude00""#, "\"é😀\""],
                true
            )
        );
    }

    #[test]
    fn tells_loose_elements() {
        assert_eq!(elements(r#"[{"a": 1}]"#), (vec![r#"{"a": 1}"#], false));
        assert_eq!(elements("[[1 ,2]]"), (vec!["[1 ,2]"], false));
        assert_eq!(elements("[{\n}]"), (vec!["{\n}"], false));
        // Whitespace in strings or between the elements keeps them compact.
        assert_eq!(
            elements("[ \"a b\" ,\t\"c\" ]"),
            (vec!["\"a b\"", "\"c\""], true)
        );
    }

    #[test]
    fn refuses_what_is_not_json() {
        for data in [
            "",
            " ",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[1]]",
            "[1] x",
            "[01]",
            "[-]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[1e+]",
            "[+1]",
            "[tru]",
            "[truex]",
            "[nul]",
            "[\"a]",
            "[\"\\x\"]",
            "[\"\\u12g4\"]",
            "[\"\\u12\"]",
            "[\"a\u{1}b\"]",
            "[\"\n\"]",
            "[{1:2}]",
            "[{\"a\"}]",
            "[{\"a\":}]",
            "[{\"a\":1,}]",
            "[{\"a\":1]",
            "['a']",
            "[NaN]",
            "[Infinity]",
            "[undefined]",
        ] {
            assert_eq!(
                scan_array(data).unwrap_err(),
                ScanError::Invalid,
                "{data:?}"
            );
        }
    }

    #[test]
    fn tells_valid_json_that_is_no_array() {
        for data in ["{}", " {\"a\":[1]} ", "1", "\"a\"", "null"] {
            assert_eq!(
                scan_array(data).unwrap_err(),
                ScanError::NotArray,
                "{data:?}"
            );
        }
    }

    #[test]
    fn bounds_the_depth() {
        let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        assert!(scan_array(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            scan_array(&nested(MAX_DEPTH + 1)).unwrap_err(),
            ScanError::TooDeep
        );
        // Hostile depth never recurses past the bound, however deep it goes.
        assert_eq!(
            scan_array(&"[".repeat(100_000)).unwrap_err(),
            ScanError::TooDeep
        );
        let objects = format!(
            "[{}1{}]",
            "{\"a\":".repeat(MAX_DEPTH),
            "}".repeat(MAX_DEPTH)
        );
        assert_eq!(scan_array(&objects).unwrap_err(), ScanError::TooDeep);
        let objects = format!(
            "[{}1{}]",
            "{\"a\":".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert!(scan_array(&objects).is_ok());
    }

    /// The scanner and serde_json agree on every text of a generated corpus: valid texts, and
    /// each of them cut short or with one byte changed.
    #[test]
    fn agrees_with_serde_json() {
        let seeds = [
            r#"["echo",{"msg":"hello world","n":42}]"#,
            r#"[1,-2.5e-3,true,false,null,"\u0041\n",[{},[]],{"k":{"j":[1,2,{"x":"y"}]}}]"#,
            r#" [ { "a" : [ 1 , 2 ] } , "é" ] "#,
            r#"[0,10,-0,1E5,1e+5,0.0001,"\\","\"",{"":""}]"#,
        ];
        let alphabet = b"[]{}\",:\\ 0123456789-+.eEtrufalsn\x01\n";
        let mut checked = 0;
        for seed in seeds {
            let bytes = seed.as_bytes();
            let mut variants = vec![seed.to_owned()];
            for cut in 0..bytes.len() {
                if let Ok(s) = std::str::from_utf8(&bytes[..cut]) {
                    variants.push(s.to_owned());
                }
            }
            for i in 0..bytes.len() {
                for &b in alphabet {
                    let mut changed = bytes.to_vec();
                    changed[i] = b;
                    if let Ok(s) = String::from_utf8(changed) {
                        variants.push(s);
                    }
                }
            }
            for text in &variants {
                let ours = scan_array(text);
                let theirs = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text);
                match (&ours, &theirs) {
                    (Ok(elements), Ok(raw)) => {
                        let ours: Vec<&str> =
                            elements.ranges.iter().map(|r| &text[r.clone()]).collect();
                        let theirs: Vec<&str> = raw.iter().map(|r| r.get()).collect();
                        assert_eq!(ours, theirs, "{text:?}");
                        let loose = theirs.iter().any(|t| has_space_outside_strings(t));
                        assert_eq!(elements.compact, !loose, "{text:?}");
                    }
                    (Err(ScanError::NotArray), Err(_)) => {
                        assert!(
                            serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok(),
                            "{text:?}"
                        );
                    }
                    (Err(ScanError::Invalid), Err(_)) => {
                        assert!(
                            serde_json::from_str::<&serde_json::value::RawValue>(text).is_err(),
                            "{text:?}"
                        );
                    }
                    _ => panic!("{text:?}: scanner {ours:?}, serde_json {theirs:?}"),
                }
                checked += 1;
            }
        }
        assert!(checked > 1_000, "only {checked} texts");
    }

    #[test]
    fn finds_space_outside_strings() {
        assert!(!has_space_outside_strings(r#"{"a b":"c\" d"}"#));
        assert!(has_space_outside_strings(r#"{"a": 1}"#));
        assert!(has_space_outside_strings("[1,\n2]"));
        assert!(!has_space_outside_strings(r#""\\" "#.trim_end()));
        assert_eq!(compact_json("[\"é ü\", 1 ]"), "[\"é ü\",1]");
        assert_eq!(
            compact_json("{ \"a\\\" b\" :\t[ 1 ,\n2 ] }"),
            "{\"a\\\" b\":[1,2]}"
        );
        assert!(matches!(compact_json("[1,\"a b\"]"), Cow::Borrowed(_)));
    }
}

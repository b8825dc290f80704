//! Just enough JSON to read `{"name":"..."}` with the standard library
//! alone (so the template builds without fetching crates). Once you add
//! crates, `serde_json` does this and more: delete this file and write
//! `serde_json::from_slice::<Input>(&body)`.

/// The string value of the top-level key `name` of a JSON object; `None`
/// when the text is not a JSON object, or `name` is missing or not a string.
pub fn name(text: &str) -> Option<String> {
    let mut json = Reader {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let mut name = None;
    json.eat(b'{')?;
    if !json.next_is(b'}') {
        loop {
            let key = json.string()?;
            json.eat(b':')?;
            if key == "name" && json.next_is(b'"') {
                name = Some(json.string()?);
            } else {
                // As in JavaScript, Python and Go, the last `name` counts.
                name = if key == "name" { None } else { name };
                json.value()?;
            }
            if !json.next_is(b',') {
                break;
            }
            json.eat(b',')?;
        }
    }
    json.eat(b'}')?;
    json.skip_space();
    // Anything after the object makes the whole text invalid.
    (json.i == json.s.len()).then_some(())?;
    name
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    /// Nesting of the value being skipped: bounded, so a body of a million
    /// `[` cannot overflow the stack.
    depth: u32,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn next_is(&mut self, byte: u8) -> bool {
        self.skip_space();
        self.s.get(self.i) == Some(&byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.next_is(byte).then(|| self.i += 1)
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.s.get(self.i)?;
        self.i += 1;
        Some(byte)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.byte()? {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let c = match self.byte()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut code = self.hex4()?;
                            // Beyond the first plane: a pair of surrogates.
                            if (0xD800..0xDC00).contains(&code) {
                                (self.byte()? == b'\\' && self.byte()? == b'u').then_some(())?;
                                let low = self.hex4()?;
                                (0xDC00..0xE000).contains(&low).then_some(())?;
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                0..=0x1f => return None,
                byte => out.push(byte),
            }
        }
    }

    /// Skips one value of any kind.
    fn value(&mut self) -> Option<()> {
        self.skip_space();
        let rest = &self.s[self.i..];
        match rest.first()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => self.nested(),
            _ => {
                let literal = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|word| rest.starts_with(word));
                let len = match literal {
                    Some(word) => word.len(),
                    None => rest
                        .iter()
                        .take_while(|b| b"+-.eE0123456789".contains(b))
                        .count(),
                };
                (len > 0).then(|| self.i += len)
            }
        }
    }

    /// Skips an object or an array.
    fn nested(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= 64).then_some(())?;
        let close = if self.byte()? == b'{' { b'}' } else { b']' };
        if !self.next_is(close) {
            loop {
                if close == b'}' {
                    self.string()?;
                    self.eat(b':')?;
                }
                self.value()?;
                if !self.next_is(b',') {
                    break;
                }
                self.eat(b',')?;
            }
        }
        self.eat(close)?;
        self.depth -= 1;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn reads_the_name_or_nothing() {
        assert_eq!(name(r#"{"name":"Ada"}"#).as_deref(), Some("Ada"));
        assert_eq!(
            name(r#" {"a":[1,{"b":null}],"name":"J\u00e9r\u00f4me \ud83d\ude00"} "#).as_deref(),
            Some("Jérôme 😀")
        );
        for text in [
            "",
            "{}",
            "[]",
            r#"{"name":5}"#,
            r#"{"name":"Ada""#,
            r#"{"name":"Ada"} x"#,
            r#"{"name":"a","name":1}"#,
            &"[".repeat(100_000),
        ] {
            assert_eq!(name(text), None, "{text}");
        }
    }
}

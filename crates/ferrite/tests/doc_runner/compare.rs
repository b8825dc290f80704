//! Comparing a command's output with the output a transcript shows: lines
//! trimmed, blank lines ignored, `...` for any number of lines and `[..]`
//! for any text inside a line.

/// The lines that count: trimmed, blank ones left out.
pub fn significant(text: &[String]) -> Vec<String> {
    text.iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whether `actual` is what `expected` shows (both already [`significant`]).
pub fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line_matches(first, line) && matches(rest, more)),
    }
}

/// One line against its pattern, where `[..]` matches any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let pieces: Vec<&str> = pattern.split("[..]").collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if pieces.len() == 1 {
        return pattern == line;
    }
    if !line.starts_with(first) || line.len() < first.len() + last.len() || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        significant(&text.lines().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn wildcards() {
        assert!(matches(&lines("a\n\n  b "), &lines("a\nb\n")));
        assert!(!matches(&lines("a"), &lines("a\nb")));
        assert!(matches(&lines("a\n...\nd"), &lines("a\nb\nc\nd")));
        assert!(matches(&lines("...\nd"), &lines("d")));
        assert!(matches(&lines("..."), &lines("")));
        assert!(!matches(&lines("a\n...\nd"), &lines("a\nb")));
        assert!(matches(
            &lines("id [..] at [..]."),
            &lines("id 42 at 10:00.")
        ));
        assert!(!matches(
            &lines("id [..] at [..]."),
            &lines("id 42 on 10:00.")
        ));
        assert!(matches(&lines("[..]"), &lines("anything")));
        assert!(!matches(&lines("a[..]a"), &lines("a")));
    }
}

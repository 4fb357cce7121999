//! Ages as settings and flags spell them: `30d`, `12h`, `45m`, `90s`, `2w`
//! (a bare number is days).

use crate::error::{Error, Result};

/// Parses `30d`, `12h`, `45m`, `90s`, `2w` into seconds.
pub fn parse_age(text: &str) -> Result<u64> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| bad_age(text))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad_age(text)),
    };
    Ok(n * mult)
}

fn bad_age(text: &str) -> Error {
    Error::invalid_input(format!(
        "`{text}` is not an age — use e.g. 30d, 12h, 45m or 2w"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_age("12h").unwrap(), 12 * 3600);
        assert_eq!(parse_age("2w").unwrap(), 14 * 86_400);
        assert_eq!(parse_age("7").unwrap(), 7 * 86_400);
        assert!(parse_age("soon").is_err());
        assert!(parse_age("5y").is_err());
    }
}

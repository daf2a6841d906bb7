//! Durations on the command line and in the config file: `125s`, `500ms`, `2m`, `1h`.
use std::time::Duration;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad =
        || format!("bad duration {text:?}: expected a number with a unit, like 125s, 500ms or 2m");
    if number.is_empty() {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => value,
        "s" => value * 1e3,
        "m" | "min" => value * 60e3,
        "h" => value * 3600e3,
        _ => return Err(bad()),
    };
    if !millis.is_finite() || millis > 1e12 {
        return Err(bad());
    }
    Ok(Duration::from_millis(millis.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_duration("125s"), Ok(Duration::from_secs(125)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in ["", "5", "s", "5x", "-1s", "1e9h", "abc", "5 s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("bad duration"), "{bad}: {err}");
        }
    }
}

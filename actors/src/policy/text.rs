//! How names and other request text appear in messages and logs: clipped, so a huge
//! name in a request never becomes a huge answer or log line.

/// A name shortened for messages and logs (at most 64 characters, then `…`).
pub fn clip(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_text_is_clipped_and_short_text_kept() {
        assert_eq!(super::clip("alice"), "alice");
        let long = "x".repeat(70);
        assert_eq!(super::clip(&long), format!("{}…", "x".repeat(64)));
    }
}

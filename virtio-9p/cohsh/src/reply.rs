//! Replies: what one command produced, and how it is printed.

use serde_json::{Value, json};

/// Most bytes of output a [`Reply`] keeps for `EXPECT` (the status line is
/// always kept). Output beyond this is still printed, just not captured.
pub const CAPTURE_LIMIT: usize = 1 << 20;

/// The result of one command.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status verb, uppercase (`LS`, `TAIL`, `UNKNOWN`, …).
    pub verb: String,
    /// `OK` or `ERR`.
    pub ok: bool,
    /// Why it failed: an errno name (`ENOENT`, `EPERM`, `EDQUOT` — coco's
    /// ELIMIT) or a cohsh reason (`usage`, `bad-path`, `not-attached`, …).
    /// `None` when `ok`.
    pub reason: Option<String>,
    /// `key=value` words on success (`path=/x bytes=3`), free text on
    /// failure.
    pub detail: Option<String>,
    /// Structured result for `--json` (`null` when there is none).
    pub data: Value,
    /// Everything printed before the status line, in text form (lossy
    /// UTF-8, including a stream's `END` line), capped at [`CAPTURE_LIMIT`].
    pub output: String,
    /// Whether `output` was capped.
    pub output_truncated: bool,
}

impl Reply {
    /// A successful reply.
    #[must_use]
    pub fn ok(verb: &str, detail: Option<String>, data: Value) -> Reply {
        Reply {
            verb: verb.to_owned(),
            ok: true,
            reason: None,
            detail,
            data,
            output: String::new(),
            output_truncated: false,
        }
    }

    /// A failed reply.
    #[must_use]
    pub fn err(verb: &str, reason: &str, detail: Option<String>) -> Reply {
        Reply {
            verb: verb.to_owned(),
            ok: false,
            reason: Some(reason.to_owned()),
            detail,
            data: Value::Null,
            output: String::new(),
            output_truncated: false,
        }
    }

    /// `OK <VERB>[ <detail>]` or `ERR <VERB> reason=<reason>[ detail=<detail>]`
    /// (no newline).
    #[must_use]
    pub fn status_line(&self) -> String {
        let mut s = if self.ok {
            format!("OK {}", self.verb)
        } else {
            format!(
                "ERR {} reason={}",
                self.verb,
                self.reason.as_deref().unwrap_or("error")
            )
        };
        if let Some(d) = self.detail.as_deref().filter(|d| !d.is_empty()) {
            s.push(' ');
            if !self.ok {
                s.push_str("detail=");
            }
            s.push_str(&one_line(d));
        }
        s
    }

    /// The full reply in text form: output, then the status line and a
    /// newline. This is what `EXPECT` checks, whatever the output mode.
    #[must_use]
    pub fn text(&self) -> String {
        let mut s = self.output.clone();
        s.push_str(&self.status_line());
        s.push('\n');
        s
    }

    /// The `--json` reply object (see the crate docs).
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "verb": self.verb,
            "ok": self.ok,
            "reason": self.reason,
            "detail": self.detail,
            "data": self.data,
        })
    }

    pub(crate) fn capture(&mut self, text: &str) {
        if self.output_truncated {
            return;
        }
        let room = CAPTURE_LIMIT.saturating_sub(self.output.len());
        if text.len() <= room {
            self.output.push_str(text);
        } else {
            let mut cut = room;
            while cut > 0 && !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.output.push_str(text.get(..cut).unwrap_or(""));
            self.output_truncated = true;
        }
    }
}

/// Control characters (a newline in a server's text, say) would break the
/// one-status-line rule: show them escaped.
fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let r = Reply::ok("LS", Some("path=/ entries=2".into()), Value::Null);
        assert_eq!(r.status_line(), "OK LS path=/ entries=2");
        let r = Reply::ok("QUIT", None, Value::Null);
        assert_eq!(r.status_line(), "OK QUIT");
        let r = Reply::err("CAT", "ENOENT", Some("/nope".into()));
        assert_eq!(r.status_line(), "ERR CAT reason=ENOENT detail=/nope");
        let r = Reply::err("CAT", "ENOENT", None);
        assert_eq!(r.status_line(), "ERR CAT reason=ENOENT");
        let r = Reply::err("X", "protocol", Some("a\nb".into()));
        assert_eq!(r.status_line(), "ERR X reason=protocol detail=a\\nb");
    }

    #[test]
    fn capture_is_capped() {
        let mut r = Reply::ok("CAT", None, Value::Null);
        r.capture(&"é".repeat(CAPTURE_LIMIT));
        assert!(r.output_truncated);
        assert!(r.output.len() <= CAPTURE_LIMIT);
        r.capture("more");
        assert!(!r.output.ends_with("more"));
        assert!(r.text().ends_with("OK CAT\n"));
    }

    #[test]
    fn json_shape() {
        let r = Reply::err("CAT", "ENOENT", Some("/x".into()));
        assert_eq!(
            r.to_json(),
            json!({"verb":"CAT","ok":false,"reason":"ENOENT","detail":"/x","data":null})
        );
    }
}

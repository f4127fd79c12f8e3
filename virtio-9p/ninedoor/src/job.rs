//! GPU job descriptors written to `/gpu/<id>/job`.
//!
//! Each written line must be one JSON object with a string `payload` and a
//! `sha256` field holding the lower-case hex SHA-256 of the payload's UTF-8
//! bytes (exactly as written in the JSON string, after JSON unescaping).
//! Other fields (job id, model, kernel…) are kept as written. The check makes
//! a truncated or corrupted descriptor fail at the door instead of inside a
//! GPU worker.

use crate::sha256::sha256_hex;

/// Longest accepted descriptor line.
pub const MAX_JOB_LINE: usize = 16 * 1024;

/// A validated descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDescriptor {
    /// The payload hash (lower-case hex).
    pub sha256: String,
    /// The line as stored (compact JSON, no newline).
    pub line: String,
}

/// Validates one line.
pub fn validate_job_line(line: &str) -> Result<JobDescriptor, String> {
    if line.len() > MAX_JOB_LINE {
        return Err(format!("descriptor longer than {MAX_JOB_LINE} bytes"));
    }
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("a job descriptor must be a JSON object")?;
    let payload = obj
        .get("payload")
        .and_then(serde_json::Value::as_str)
        .ok_or("missing string field \"payload\"")?;
    let claimed = obj
        .get("sha256")
        .and_then(serde_json::Value::as_str)
        .ok_or("missing string field \"sha256\"")?;
    if claimed.len() != 64
        || !claimed
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("sha256 must be 64 lower-case hex digits".into());
    }
    let actual = sha256_hex(payload.as_bytes());
    if actual != claimed {
        return Err(format!("sha256 mismatch: payload hashes to {actual}"));
    }
    Ok(JobDescriptor {
        sha256: actual,
        line: v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors() {
        let h = sha256_hex(b"matmul 4x4");
        let ok = format!(r#"{{"id":"j1","payload":"matmul 4x4","sha256":"{h}"}}"#);
        let d = validate_job_line(&ok).unwrap();
        assert_eq!(d.sha256, h);
        assert!(d.line.contains("\"id\":\"j1\""));
        for bad in [
            "{}".to_owned(),
            "[1]".to_owned(),
            "nope".to_owned(),
            r#"{"payload":"matmul 4x4"}"#.to_owned(),
            format!(r#"{{"payload":"matmul 4x5","sha256":"{h}"}}"#),
            format!(
                r#"{{"payload":"matmul 4x4","sha256":"{}"}}"#,
                h.to_uppercase()
            ),
            format!(r#"{{"payload":7,"sha256":"{h}"}}"#),
            format!(r#"{{"payload":"matmul 4x4","sha256":"{h}"}} {{}}"#),
            format!(
                r#"{{"payload":"{}","sha256":"{h}"}}"#,
                "x".repeat(MAX_JOB_LINE)
            ),
        ] {
            assert!(validate_job_line(&bad).is_err(), "{bad}");
        }
    }
}

//! Secrets in the connection string: `${NAME}` filled from the environment, and kept out of
//! every message and log line.

use std::path::Path;

/// Replaces `${NAME}` with the environment variable; `Err(NAME)` if it is unset.
pub(super) fn substitute_env(template: &str) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&std::env::var(name).map_err(|_| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Keeps the parts of a connection string that identify the source and drops credentials and
/// everything else.
pub(super) fn redact(connection_string: &str) -> String {
    const SAFE: [&str; 6] = ["driver", "server", "port", "database", "dsn", "host"];
    connection_pairs(connection_string)
        .filter(|(key, _)| SAFE.contains(&key.to_ascii_lowercase().as_str()))
        .map(|(key, value)| {
            let value = if key.eq_ignore_ascii_case("database") {
                // A SQLite path: only its file name.
                Path::new(value.trim()).file_name().map_or(value, |f| f.to_str().unwrap_or(value))
            } else {
                value
            };
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Removes `connection_string` and the credentials in it from `message`: any text bound for an
/// error or a log line that a driver wrote passes through here.
pub(crate) fn scrub(connection_string: &str, message: &str) -> String {
    let mut message = message.replace(connection_string, "<connection string>");
    for (key, value) in connection_pairs(connection_string) {
        let key = key.to_ascii_lowercase();
        if ["pwd", "password", "uid", "user"].contains(&key.as_str()) && value.len() >= 3 {
            message = message.replace(value, "***");
        }
    }
    message
}

/// The `key=value` pairs of a connection string, each key trimmed, each value as written.
pub(crate) fn connection_pairs(connection_string: &str) -> impl Iterator<Item = (&str, &str)> {
    connection_string.split(';').filter_map(|pair| pair.split_once('=')).map(|(key, value)| (key.trim(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_string_and_each_credential() {
        let odbc = "Driver={X};Server=db;Uid=alice;Pwd=s3cret-pw;";
        let message = format!("login failed for alice with s3cret-pw using {odbc}");
        let scrubbed = scrub(odbc, &message);
        assert!(!scrubbed.contains("s3cret-pw") && !scrubbed.contains("alice"), "{scrubbed}");
        assert!(scrubbed.contains("<connection string>"), "{scrubbed}");
    }

    #[test]
    fn redact_keeps_only_what_identifies_the_source() {
        assert_eq!(
            redact("Driver={PG};Server=h;Port=5;Database=/a/b.db;Uid=u;Pwd=p;"),
            "Driver={PG};Server=h;Port=5;Database=b.db"
        );
    }
}

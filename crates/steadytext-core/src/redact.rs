//! [`redact_url`]: credentials out of URLs before they reach a log line or an error message.

/// Query-string / key-value parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "api_key", "apikey", "access_token", "token"];

/// `url` with any password replaced by `***`, for messages and logs. Handles both URL form
/// (`http://user:secret@host/v1`, `postgres://user:secret@host/db`) and key/value form
/// (`host=h password=secret`); secret query parameters (`password`, `api_key`, `apikey`,
/// `access_token`, `token`) are redacted too. The user name is kept.
///
/// ```
/// use steadytext_core::redact_url;
/// assert_eq!(redact_url("http://bob:hunter2@h:8080/v1"), "http://bob:***@h:8080/v1");
/// assert_eq!(redact_url("http://h/v1?api_key=sk-1&x=1"), "http://h/v1?api_key=***&x=1");
/// ```
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut out = url[..scheme_end + 3].to_string();
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        let tail = &rest[authority_end..];
        out.push_str(&redact_params(tail));
        out
    } else {
        redact_params(url)
    }
}

fn redact_params(s: &str) -> String {
    SECRET_PARAMS
        .iter()
        .fold(s.to_string(), |acc, key| redact_param(&acc, key))
}

/// Redact `key=...` in a query string or key/value connection string.
fn redact_param(s: &str, key: &str) -> String {
    let needle = format!("{key}=");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.to_ascii_lowercase().find(&needle) {
        let boundary_ok = pos == 0 || matches!(rest.as_bytes()[pos - 1], b'?' | b'&' | b' ');
        let value_start = pos + needle.len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if boundary_ok {
            let end = rest.find(['&', ' ', '#']).unwrap_or(rest.len());
            out.push_str("***");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bob:s3cr@t@db.example:5432/app?sslmode=require"),
            "postgres://bob:***@db.example:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgresql://localhost/db?user=u&password=p&x=1"),
            "postgresql://localhost/db?user=u&password=***&x=1"
        );
        assert_eq!(
            redact_url("host=h password=hunter2 dbname=d"),
            "host=h password=*** dbname=d"
        );
        assert_eq!(redact_url("postgres://h"), "postgres://h");
        assert_eq!(
            redact_url("https://u:p%40ss@h:1/v1/models?token=abc#frag"),
            "https://u:***@h:1/v1/models?token=***#frag"
        );
        assert_eq!(
            redact_url("http://h/?x=1&access_token=t&y=2"),
            "http://h/?x=1&access_token=***&y=2"
        );
    }
}

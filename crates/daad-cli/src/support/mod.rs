//! Command-line support written once for `daad` and `cargo xtask`.

pub mod logging;
pub mod progress;
pub mod signal;
pub mod startup;

/// An error and its causes on one line (`outer: cause: root`), each text once: a typed error
/// whose message already quotes its source (an OS or codec message) does not repeat it.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Quoting {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_quoted_by_its_error_prints_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let err = anyhow::Error::new(Quoting { path: "a.png".into(), source: io })
            .context("predicting with run r");
        let text = error_chain(&err);
        assert_eq!(text, "predicting with run r: cannot read a.png: Permission denied");
        assert_eq!(text.matches("Permission denied").count(), 1);
    }
}

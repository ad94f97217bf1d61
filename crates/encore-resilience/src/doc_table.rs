//! Test support: read the markdown tables of a source file's doc comments, so that the tests of
//! the `# Defaults` tables compare the documentation with the values (and cannot match the test's
//! own code, which is not a doc comment).

/// The cells of every table row in the doc comments (`///` or `//!` lines) of `source`, with
/// the backticks around each cell removed.
pub(crate) fn rows(source: &str) -> Vec<Vec<String>> {
    source
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let doc = line
                .strip_prefix("///")
                .or_else(|| line.strip_prefix("//!"))?;
            let row = doc.trim().strip_prefix('|')?.strip_suffix('|')?;
            Some(
                row.split('|')
                    .map(|cell| cell.trim().trim_matches('`').to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// The cell in `column` (0 is the key) of the doc-table row whose key is `key`, if exactly one
/// row has that key.
pub(crate) fn cell(source: &str, key: &str, column: usize) -> Option<String> {
    let mut found = rows(source).into_iter().filter(|row| row[0] == key);
    let row = found.next()?;
    if found.next().is_some() {
        return None;
    }
    row.get(column).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "
/// | key | default |
/// |---|---|
/// | `retries` | `3` |
//! | `mode` | `fast` | the meaning |
fn test() {
    let row = \"| `retries` | `4` |\"; // code, not documentation
    // | `hidden` | `1` |
}
/// | `twice` | `1` |
/// | `twice` | `2` |
";

    #[test]
    fn only_doc_comment_rows_are_read() {
        assert_eq!(cell(SOURCE, "retries", 1).as_deref(), Some("3"));
        assert_eq!(cell(SOURCE, "mode", 2).as_deref(), Some("the meaning"));
        assert_eq!(
            cell(SOURCE, "hidden", 1),
            None,
            "a plain comment is not documentation"
        );
        assert_eq!(
            cell(SOURCE, "twice", 1),
            None,
            "an ambiguous key matches nothing"
        );
        assert_eq!(cell(SOURCE, "retries", 5), None);
    }
}

//! Plain aligned tables and cutting lines to the terminal's width.

use console::{measure_text_width, Term};

/// The terminal's width when stdout is one.
pub(crate) fn stdout_width() -> Option<usize> {
    let term = Term::stdout();
    if !term.is_term() {
        return None;
    }
    term.size_checked().map(|(_, cols)| usize::from(cols))
}

/// `text` cut to `width` display columns, with `…` when cut.
pub(crate) fn cut(text: &str, width: usize) -> String {
    if measure_text_width(text) <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = measure_text_width(c.encode_utf8(&mut [0; 4]));
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// The first line of a description, whitespace collapsed.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Renders rows under a header, columns padded to their widest cell; the
/// columns in `right` are right-aligned.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| measure_text_width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(measure_text_width(cell));
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(measure_text_width(cell));
            if i > 0 {
                out.push_str("  ");
            }
            if right.contains(&i) {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_cuts() {
        let t = table(
            &["a", "n"],
            &[
                vec!["long name".into(), "1".into()],
                vec!["x".into(), "22".into()],
            ],
            &[1],
        );
        assert_eq!(t, vec!["a           n", "long name   1", "x          22"]);
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}

//! The pieces of the report document (headings, paragraphs, tables...), rendered as Markdown or
//! HTML, and the cells they share.

use crate::plots;

/// A piece of the report, rendered as Markdown or HTML.
pub(super) enum Block {
    Heading(u8, String),
    Paragraph(String),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    List(Vec<String>),
    /// (text, address).
    Links(Vec<(String, String)>),
    /// (path relative to the report, caption).
    Image(String, String),
}

pub(super) fn bytes_cell(bytes: u64) -> String {
    if bytes == 0 {
        "-".to_string()
    } else {
        format!("{bytes} ({})", plots::human_bytes(bytes as f64))
    }
}

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

//! Rendering the report document as Markdown (`report.md`) and HTML (`index.html`).

use std::fmt::Write as _;

use super::blocks::{one_line, Block};
use super::document::document;
use super::entry::Entry;

fn markdown_cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

pub(super) fn render_markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from(*level)));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::Table { header, rows } => {
                let _ = writeln!(
                    out,
                    "| {} |",
                    header
                        .iter()
                        .map(|h| markdown_cell(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
                for row in rows {
                    let _ = writeln!(
                        out,
                        "| {} |",
                        row.iter()
                            .map(|c| markdown_cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
                out.push('\n');
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", one_line(item));
                }
                out.push('\n');
            }
            Block::Links(links) => {
                for (text, url) in links {
                    let _ = writeln!(out, "- {text}: <{url}>");
                }
                out.push('\n');
            }
            Block::Image(path, caption) => {
                let _ = writeln!(out, "![{caption}]({path})\n");
            }
        }
    }
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// HTML of a paragraph: escaped, with Markdown's `**bold**` and `` `code` `` kept.
fn html_inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in html_escape(text).split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            for (j, piece) in part.split('`').enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<code>{piece}</code>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;\
text-align:right;vertical-align:top}td:first-child,th:first-child{text-align:left}\
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}";

pub(super) fn render_html(blocks: &[Block]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>imapsim report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", html_escape(text));
            }
            Block::Paragraph(text) => {
                let _ = writeln!(out, "<p>{}</p>", html_inline(text));
            }
            Block::Table { header, rows } => {
                out.push_str("<table>\n<tr>");
                for h in header {
                    let _ = write!(out, "<th>{}</th>", html_escape(h));
                }
                out.push_str("</tr>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for cell in row {
                        let _ = write!(out, "<td>{}</td>", html_escape(cell));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", html_escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Links(links) => {
                out.push_str("<ul>\n");
                for (text, url) in links {
                    let url = html_escape(url);
                    let _ = writeln!(
                        out,
                        "<li>{}: <a href=\"{url}\">{url}</a></li>",
                        html_escape(text)
                    );
                }
                out.push_str("</ul>\n");
            }
            Block::Image(path, caption) => {
                let (path, caption) = (html_escape(path), html_escape(caption));
                let _ = writeln!(
                    out,
                    "<figure><a href=\"{path}\"><img src=\"{path}\" alt=\"{caption}\" loading=\"lazy\"></a><figcaption>{caption}</figcaption></figure>"
                );
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The report as Markdown (`report.md`).
pub fn markdown(entries: &[Entry]) -> String {
    render_markdown(&document(entries, &[]))
}

/// The report as HTML (`index.html`), the plots embedded from `plots/`.
pub fn html(entries: &[Entry]) -> String {
    render_html(&document(entries, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::entry::Verdict;
    use crate::report::fixtures::{report, sample_entries};
    use crate::report::plot_files::svg_plots;

    #[test]
    fn markdown_and_html_show_every_run_the_references_and_the_slopes() {
        let entries = sample_entries();
        let md = markdown(&entries);
        assert!(md.contains("| demo | 9 | 100 |"), "{md}");
        assert!(md.contains("| idle_1k | 1 | - |"), "{md}");
        assert!(md.contains("FAILED"), "{md}");
        assert!(md.contains("**3000.00 B per session**"), "{md}");
        assert!(md.contains("**80.00 B per email**"), "{md}");
        assert!(md.contains("~2 MB RSS per user"), "{md}");
        assert!(md.contains("5-13 KiB per hibernated"), "{md}");
        assert!(md.contains("300 MB spike"), "{md}");
        assert!(md.contains("(plots/heap_demo.svg)"), "{md}");
        let page = html(&entries);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(
            page.contains("<img src=\"plots/scaling_idle.svg\""),
            "{page}"
        );
        assert!(page.contains("<img src=\"plots/heap_demo.svg\""), "{page}");
        assert!(
            page.contains("<strong>3000.00 B per session</strong>"),
            "{page}"
        );
        assert!(
            page.contains("<td>demo</td><td>9</td><td>100</td>"),
            "{page}"
        );
    }

    #[test]
    fn entries_are_named_by_the_registry_even_when_a_report_says_otherwise() {
        let entry = Entry {
            scenario: "fault_x".into(),
            seed: 2,
            result: Ok((report("demo", 5), Verdict::NoBudget)),
        };
        let md = markdown(std::slice::from_ref(&entry));
        assert!(md.contains("| fault_x | 9 | 5 |"), "{md}");
        assert!(md.contains("(plots/heap_fault_x.svg)"), "{md}");
        assert!(
            md.contains("fault_x: its report names another scenario, demo"),
            "{md}"
        );
        let (plots, notes) = svg_plots(&[entry]);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(plots
            .iter()
            .any(|(path, _)| path == "plots/heap_fault_x.svg"));
    }

    #[test]
    fn html_escapes_what_the_runs_report() {
        let mut r = report("demo", 1);
        r.failures
            .push("client0: expected <OK>, got \"NO & BAD\"".into());
        let page = html(&[Entry::ran(r, Verdict::Ok)]);
        assert!(
            page.contains("expected &lt;OK&gt;, got &quot;NO &amp; BAD&quot;"),
            "{page}"
        );
        assert!(!page.contains("<OK>"));
    }
}

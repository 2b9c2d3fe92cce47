//! The report's view laid out: `report.md` (with the comparison tables rendered first and
//! placed into it) and the self-contained `report.html`, from the templates under
//! `harness/templates/`.

use super::view::View;
use anyhow::Context;

const MARKDOWN_TEMPLATE: &str = include_str!("../../templates/report.md.j2");
const HTML_TEMPLATE: &str = include_str!("../../templates/report.html.j2");
const TABLES_TEMPLATE: &str = include_str!("../../templates/tables.md.j2");

/// The rendered report.
pub struct Rendered {
    pub markdown: String,
    pub html: String,
    /// The comparison tables alone, in Markdown.
    pub tables: String,
}

/// The Markdown templates' `cell` filter: a table cell may not hold a `|`.
pub fn markdown_cell(s: String) -> String {
    s.replace('|', "\\|")
}

/// Render `view` (which keeps the rendered tables, for the Markdown report to place).
pub fn render(view: &mut View) -> anyhow::Result<Rendered> {
    let mut env = crate::templates::environment()?;
    env.add_filter("cell", markdown_cell);
    env.add_template("tables.md", TABLES_TEMPLATE)
        .context("parsing templates/tables.md.j2")?;
    env.add_template("report.md", MARKDOWN_TEMPLATE)
        .context("parsing templates/report.md.j2")?;
    // The `.html` name turns on HTML escaping; the SVGs are marked safe in the template.
    env.add_template("report.html", HTML_TEMPLATE)
        .context("parsing templates/report.html.j2")?;
    let ctx = |view: &View| minijinja::Value::from(minijinja::value::Serde(view));
    view.tables = env.get_template("tables.md")?.render(ctx(view))?;
    Ok(Rendered {
        markdown: env.get_template("report.md")?.render(ctx(view))?,
        html: env.get_template("report.html")?.render(ctx(view))?,
        tables: view.tables.clone(),
    })
}

//! The harness's templates (the nginx configs, the ceiling report) share one syntax: block
//! tags sit on lines of their own and leave no blank lines behind.

use anyhow::Context;
use serde::Serialize;

/// Render `template`, named `name` in errors, with `context`.
pub fn render(name: &str, template: &str, context: &impl Serialize) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .context("building the template syntax")?,
    );
    env.add_template(name, template)
        .with_context(|| format!("parsing {name}"))?;
    env.get_template(name)?
        .render(minijinja::value::Serde(context))
        .with_context(|| format!("rendering {name}"))
}

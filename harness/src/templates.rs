//! The harness's templates (the nginx configs, the comparison and ceiling reports) share one
//! syntax: block tags sit on lines of their own and leave no blank lines behind.

use anyhow::Context;
use serde::Serialize;

/// An environment with the harness's template syntax and no template yet.
pub fn environment() -> anyhow::Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .context("building the template syntax")?,
    );
    Ok(env)
}

/// Render `template`, named `name` in errors, with `context`.
pub fn render(
    name: &'static str,
    template: &'static str,
    context: &impl Serialize,
) -> anyhow::Result<String> {
    let mut env = environment()?;
    env.add_template(name, template)
        .with_context(|| format!("parsing {name}"))?;
    env.get_template(name)?
        .render(minijinja::value::Serde(context))
        .with_context(|| format!("rendering {name}"))
}

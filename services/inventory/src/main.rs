// jemalloc gives freed memory back to the system; glibc's malloc kept argon2's buffers
// resident (ARCHITECTURE.md, "jemalloc in every service binary").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use inventory::{configuration::Settings, startup::Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Held to the end: dropping it flushes the last spans.
    let _telemetry = common::telemetry::init("inventory")?;
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await
}

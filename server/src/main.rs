//! evidence-server: the collector server (see issue: signed reports and the collector server).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("evidence-server is not built yet")
}

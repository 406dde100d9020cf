//! `fuzz_seeds DIR`: writes each target's seed inputs (golden bytes) into DIR/<target>/.
fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| std::io::Error::other("usage: fuzz_seeds DIR"))?;
    for (name, _) in fuzz::TARGETS {
        let d = std::path::Path::new(&dir).join(name);
        std::fs::create_dir_all(&d)?;
        for (i, seed) in fuzz::seeds(name).iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:02}")), seed)?;
        }
    }
    Ok(())
}

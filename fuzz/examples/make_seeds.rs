//! Writes the seed corpus (`seeds/<target>/`) from `sleutel_fuzz::seeds::all`: run it after a
//! change of a message's format, from the fuzz crate's folder
//! (`cargo run --example make_seeds`). Seeds already there under other names are kept: the
//! inputs of findings are added by hand.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let seeds = sleutel_fuzz::seeds::all();
    for seed in &seeds {
        let folder = root.join(seed.target);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(&seed.name), &seed.data)?;
    }
    println!("{} seeds written under {}", seeds.len(), root.display());
    Ok(())
}

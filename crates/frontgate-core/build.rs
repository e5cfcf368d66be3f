//! Embeds the SQL migrations in migrations/sqlite and migrations/postgres: each file
//! `NNNN_description.sql` becomes one migration, version NNNN. Dropping a file in is enough.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let mut code = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = Path::new("migrations").join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let _ = writeln!(code, "pub const {}: &[(i64, &str, &str)] = &[", backend.to_uppercase());
        for f in files {
            let name = f.file_stem().and_then(|s| s.to_str()).expect("utf-8 file name").to_owned();
            let (version, description) =
                name.split_once('_').expect("migration files are NNNN_description.sql");
            let version: i64 = version.parse().expect("migration version is a number");
            let abs = std::fs::canonicalize(&f).expect("migration path");
            println!("cargo:rerun-if-changed={}", abs.display());
            let _ = writeln!(
                code,
                "    ({version}, {description:?}, include_str!({:?})),",
                abs.display().to_string()
            );
        }
        code.push_str("];\n");
    }
    std::fs::write(Path::new(&out).join("migrations.rs"), code).expect("write migrations.rs");
}

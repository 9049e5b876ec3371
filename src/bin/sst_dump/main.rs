//! sst-dump: inspect and verify strata tables, logs and manifests.

fn main() {
    eprintln!("sst-dump is not built yet");
    std::process::exit(2);
}

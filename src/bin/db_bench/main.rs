//! db-bench: RocksDB db_bench for strata and its peers.

fn main() {
    eprintln!("db-bench is not built yet");
    std::process::exit(2);
}

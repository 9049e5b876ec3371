//! strata embedded in a service: several threads share one database.
//!
//! Run with `cargo run --release --example embedded`.

use std::thread;
use strata::{Db, Options, WriteBatch, WriteOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;

    // Writers: each records orders for its own customer. A `Db` clone is a
    // cheap handle to the same database.
    let writers: Vec<_> = (0..4)
        .map(|customer| {
            let db = db.clone();
            thread::spawn(move || -> strata::Result<()> {
                for order in 0..1000 {
                    let mut batch = WriteBatch::new();
                    batch.put(
                        format!("order:{customer}:{order:05}"),
                        format!("{} widgets", order % 7),
                    );
                    batch.put(format!("latest:{customer}"), format!("{order}"));
                    // The last order of each customer must survive a power loss.
                    let sync = order == 999;
                    db.write_opt(
                        batch,
                        &WriteOptions {
                            sync,
                            ..Default::default()
                        },
                    )?;
                }
                Ok(())
            })
        })
        .collect();

    // A reader watches progress meanwhile, from a consistent snapshot.
    let reader = {
        let db = db.clone();
        thread::spawn(move || -> strata::Result<usize> {
            let snap = db.snapshot();
            let mut orders = 0;
            for item in snap.prefix(b"order:") {
                item?;
                orders += 1;
            }
            Ok(orders)
        })
    };

    for w in writers {
        w.join().expect("writer panicked")?;
    }
    let seen = reader.join().expect("reader panicked")?;
    println!("the reader's snapshot held {seen} orders");

    for customer in 0..4 {
        let latest = db.get(format!("latest:{customer}"))?.expect("written");
        let orders = db.prefix(format!("order:{customer}:")).count();
        println!(
            "customer {customer}: {orders} orders, latest #{}",
            String::from_utf8_lossy(&latest)
        );
    }
    let newest = db.iter().next_back().transpose()?.expect("not empty");
    println!("largest key: {}", String::from_utf8_lossy(&newest.0));
    db.flush()?;
    Ok(())
}

//! Whole-database operations: compact, checkpoint and verifychecksum (which report a
//! result line), and the meta benchmarks flush, waitforcompaction, stats,
//! levelstats and sstables (which print and report nothing).

use super::{Ctx, ThreadState};
use crate::engine::{Engine, Property};
use crate::error::Result;
use crate::plan::Meta;
use std::path::Path;

pub fn compact<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if !ctx.db.compact()? {
        th.stats
            .unsupported(&format!("({} has no manual compaction)", E::KIND.name()));
    }
    Ok(())
}

/// One checkpoint of the whole database; the message gives the time the
/// checkpoint itself took (its removal afterwards is in the line's time).
pub fn checkpoint<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    match ctx.db.checkpoint()? {
        Some((secs, what)) => {
            th.stats.finished_ops(1, crate::stats::OpKind::Other);
            th.stats
                .add_message(&format!("(checkpoint {:.1} ms, {what})", secs * 1e3));
        }
        None => th
            .stats
            .unsupported(&format!("({} has no checkpoint here)", E::KIND.name())),
    }
    Ok(())
}

pub fn verify_checksum<E: Engine>(ctx: &Ctx<'_, E>, th: &mut ThreadState) -> Result<()> {
    if !ctx.db.verify_checksums()? {
        th.stats.unsupported(&format!(
            "({} cannot verify checksums here)",
            E::KIND.name()
        ));
    }
    Ok(())
}

/// Run a meta benchmark; its output goes to stdout.
pub fn meta<E: Engine>(db: &E, meta: Meta, path: &Path) -> Result<String> {
    let property = |p: Property| {
        let text = db.property(p).unwrap_or_else(|| "(failed)".to_string());
        format!("\n{text}\n")
    };
    Ok(match meta {
        Meta::Flush => {
            db.flush()?;
            String::new()
        }
        Meta::WaitForCompaction => {
            println!("waitforcompaction({}): started", path.display());
            db.wait_for_compactions()?;
            format!("waitforcompaction({}): finished\n", path.display())
        }
        Meta::Stats => match db.property(Property::Stats) {
            Some(text) => format!("\n{text}\n"),
            // strata.stats arrives with compaction; until then show levels.
            None => format!(
                "\n(no stats property yet; level stats:)\n{}\n",
                db.property(Property::LevelStats)
                    .unwrap_or_else(|| "(failed)".into())
            ),
        },
        Meta::LevelStats => property(Property::LevelStats),
        Meta::SsTables => property(Property::SsTables),
    })
}

//! The tracing events of a scripted open, write, flush and compaction,
//! seen by a subscriber in the test.
//!
//! A binary of its own, with one test: tracing caches each event site's
//! interest in subscribers globally, and a site first reached by another
//! test's thread while the subscriber is being installed here can keep a
//! cached "no one listens" (about one run in six lost the compaction's
//! event when this test shared a binary with the listener tests).

#![allow(clippy::unwrap_used)]

mod common;

use common::{mem_dir, mem_options};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use strata::fs::MemFileSystem;
use strata::{Db, Options};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One tracing event as the test sees it: its message, its fields, and
/// the spans it was in (outermost first).
#[derive(Debug, Clone)]
struct Seen {
    message: String,
    fields: BTreeMap<String, String>,
    spans: Vec<String>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// A layer keeping every event.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Seen>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collect {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().map(|s| s.name().to_owned()).collect())
            .unwrap_or_default();
        self.0.lock().push(Seen {
            message,
            fields: fields.0,
            spans,
        });
    }
}

impl Collect {
    fn find(&self, message: &str) -> Vec<Seen> {
        let seen = self.0.lock();
        seen.iter()
            .filter(|s| s.message == message)
            .cloned()
            .collect()
    }
}

/// Open, write, flush and compact in the test's thread (inline background
/// work, so the thread's subscriber sees everything); then reopen and
/// replay. Each step leaves its event, in its span, with its figures.
#[test]
fn tracing_events_of_open_write_flush_and_compaction() {
    let fs = MemFileSystem::new();
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    tracing::subscriber::with_default(subscriber, || {
        let options = Options {
            inline_background_work: true,
            level0_file_num_compaction_trigger: 2,
            ..mem_options(&fs)
        };
        let db = Db::open(mem_dir(), options.clone()).unwrap();
        for round in 0..2u32 {
            for i in 0..100u32 {
                db.put(format!("key{i:04}"), format!("value{round}-{i}"))
                    .unwrap();
            }
            db.flush().unwrap();
        }
        db.run_background_work().unwrap();
        let stats = db.stats();
        assert_eq!(stats.flushes, 2);
        assert!(stats.compactions >= 1, "two L0 tables at trigger 2");

        let flushes = collect.find("flush completed");
        assert_eq!(flushes.len(), 2);
        let mut flushed_bytes = 0;
        for f in &flushes {
            assert_eq!(f.spans, vec!["flush"]);
            let bytes: u64 = f.fields["bytes_written"].parse().unwrap();
            assert!(bytes > 0);
            flushed_bytes += bytes;
        }
        assert_eq!(flushed_bytes, stats.flush_bytes_written);

        let compactions = collect.find("compaction completed");
        assert_eq!(compactions.len() as u64, stats.compactions);
        let c = &compactions[0];
        assert_eq!(c.spans, vec!["compaction"]);
        let written: u64 = c.fields["bytes_written"].parse().unwrap();
        assert_eq!(written, stats.compaction_bytes_written);
        // 200 entries in, the 100 older versions dropped.
        assert_eq!(c.fields["keys_in"], "200");
        assert_eq!(c.fields["keys_dropped"], "100");
        assert!(c.fields["outputs"].starts_with('['));

        // Writes left in the WAL are replayed at the next open.
        for i in 0..7u32 {
            db.put(format!("late{i}"), "x").unwrap();
        }
        drop(db);
        collect.0.lock().clear();
        let db = Db::open(mem_dir(), options).unwrap();
        let replay = collect.find("WAL replay done");
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].spans, vec!["open"]);
        // A clean close leaves logged writes in the WAL: 7 batches.
        assert_eq!(replay[0].fields["batches_replayed"], "7");
        assert_eq!(db.get("late6").unwrap().as_deref(), Some(&b"x"[..]));
    });
}

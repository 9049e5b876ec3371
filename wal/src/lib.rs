//! strata-wal

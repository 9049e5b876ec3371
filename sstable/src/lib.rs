//! strata-sstable

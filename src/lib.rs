//! strata: an LSM-tree key-value storage engine, embedded as a library.

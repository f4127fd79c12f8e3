//! GPU partitions (being written).

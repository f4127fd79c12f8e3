//! hive.toml (being written).

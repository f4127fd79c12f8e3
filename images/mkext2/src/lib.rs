//! ext2 image builder (being written).

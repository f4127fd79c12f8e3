//! images (being written).

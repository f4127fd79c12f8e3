//! coco-vmm library (being written).

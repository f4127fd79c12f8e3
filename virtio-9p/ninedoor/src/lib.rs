//! NineDoor (being written).

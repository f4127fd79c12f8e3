//! Secure9P codec (being written).
#![no_std]

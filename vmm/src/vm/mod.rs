//! One virtual machine: how it is built ([`builder`]), how its vCPUs run
//! ([`vcpu`]), how it is driven to an end ([`runner`]) and how it is stopped
//! ([`control`]).

pub mod builder;
pub mod control;
pub mod irq_routes;
pub mod runner;
pub mod spec;
pub mod vcpu;

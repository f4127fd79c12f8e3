//! The boot-timer port (0x440): a 32-bit write of a milestone id is
//! timestamped against the VMM's process start, so boot time can be measured
//! from inside the guest without trusting guest clocks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::info;

use super::bus::{BusDevice, le_value};

/// One recorded milestone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Milestone {
    /// The id the guest wrote (see `coconut_abi::milestone`).
    pub id: u32,
    /// Time since the VMM process started.
    #[serde(rename = "us", serialize_with = "as_micros")]
    pub at: Duration,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// Most milestones kept; a guest writing more is ignored past this.
pub const MAX_MILESTONES: usize = 256;

/// The boot-timer device.
#[derive(Debug)]
pub struct BootTimer {
    origin: Instant,
    guest: String,
    log: Arc<Mutex<Vec<Milestone>>>,
}

impl BootTimer {
    /// A timer counting from `origin`, recording into `log`.
    pub fn new(origin: Instant, guest: &str, log: Arc<Mutex<Vec<Milestone>>>) -> Self {
        BootTimer {
            origin,
            guest: guest.to_string(),
            log,
        }
    }
}

impl BusDevice for BootTimer {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let milestone = Milestone {
            id: le_value(data) as u32,
            at: self.origin.elapsed(),
        };
        if let Ok(mut log) = self.log.lock()
            && log.len() < MAX_MILESTONES
        {
            log.push(milestone);
            info!(
                guest = %self.guest,
                "milestone {} ({}) at {:.3} ms",
                milestone.id,
                coconut_abi::milestone::name(milestone.id),
                milestone.at.as_secs_f64() * 1e3
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_ids_in_order_with_increasing_times() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut timer = BootTimer::new(Instant::now(), "g", log.clone());
        timer.write(0, &1u32.to_le_bytes());
        timer.write(0, &2u32.to_le_bytes());
        let log = log.lock().unwrap();
        assert_eq!(log.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(log[0].at <= log[1].at);
    }

    #[test]
    fn a_flood_of_milestones_is_bounded() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut timer = BootTimer::new(Instant::now(), "g", log.clone());
        for i in 0..(MAX_MILESTONES as u32 + 10) {
            timer.write(0, &i.to_le_bytes());
        }
        assert_eq!(log.lock().unwrap().len(), MAX_MILESTONES);
    }
}

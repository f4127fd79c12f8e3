//! Whether a device could be passed through to a VM with VFIO, and if not,
//! what stands in the way.
//!
//! Why a separate verdict: `coco-vmm check` has to tell an operator not just
//! "no" but what to do — rebind a driver, unbind a sibling in the IOMMU group,
//! or enable the IOMMU. The rules mirror the kernel's: VFIO only opens a device
//! that a VFIO driver owns, and only if every other device in its IOMMU group
//! is driver-less, owned by a VFIO driver, owned by a driver that leaves DMA
//! to its user (`pci-stub`, `pcieport`), or is a PCI-to-PCI bridge. A device
//! with any other driver in the same group could be attacked by DMA from the
//! guest, so the kernel refuses.

use std::fmt;

use serde::Serialize;

use crate::iommu::IommuGroup;
use crate::pci::{self, DriverBinding};

/// Drivers that do not own their device's DMA, so the kernel lets them share
/// an IOMMU group with a VFIO-owned device (`driver_managed_dma` in Linux).
const DMA_NEUTRAL_DRIVERS: [&str; 2] = ["pci-stub", "pcieport"];

/// Whether `driver` is a VFIO driver: `vfio-pci` or one of its vendor
/// variants (`nvgrace-gpu-vfio-pci`, `mlx5_vfio_pci`, ...).
pub fn is_vfio_driver(driver: &str) -> bool {
    driver.contains("vfio")
}

/// A group member that keeps the group from being handed to a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// The member's sysfs name.
    pub device: String,
    /// Its driver ([`DriverBinding::Unknown`] if that could not be read).
    pub driver: DriverBinding,
}

/// The passthrough verdict for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Passable {
    /// Bound to a VFIO driver and its whole group is usable.
    Yes,
    /// Bound to another driver; it would have to be rebound to `vfio-pci`.
    /// `group_blockers` are other group members that would also need it.
    NeedsRebind {
        /// The current driver.
        driver: String,
        /// Other members of the group that block it as well.
        group_blockers: Vec<Blocker>,
    },
    /// No driver at all; it would have to be bound to `vfio-pci`.
    NeedsBind {
        /// Other members of the group that block it as well.
        group_blockers: Vec<Blocker>,
    },
    /// Bound to a VFIO driver, but other members of its group are not.
    GroupBlocked {
        /// The group number.
        group: u32,
        /// The members in the way.
        blockers: Vec<Blocker>,
    },
    /// Not in any IOMMU group: the IOMMU is off or does not cover it.
    NoIommu,
    /// Could not be judged; `reason` says what was unreadable.
    Unknown {
        /// What was missing or unreadable.
        reason: String,
    },
}

impl Passable {
    /// Whether the device could be passed through as the host stands.
    pub fn is_yes(&self) -> bool {
        matches!(self, Passable::Yes)
    }
}

/// Judges the device named `name` (its sysfs name), bound to `driver`, in
/// IOMMU group `group`, against the host's `groups`.
pub(crate) fn assess(
    name: &str,
    driver: &DriverBinding,
    group: Option<u32>,
    groups: &[IommuGroup],
) -> Passable {
    let Some(group) = group else {
        return Passable::NoIommu;
    };
    let Some(members) = groups.iter().find(|g| g.id == group).map(|g| &g.members) else {
        return Passable::Unknown {
            reason: format!("iommu group {group} is not listed under /sys/kernel/iommu_groups"),
        };
    };
    let blockers: Vec<Blocker> = members
        .iter()
        .filter(|m| m.name != name && !member_is_harmless(&m.driver, m.class))
        .map(|m| Blocker {
            device: m.name.clone(),
            driver: m.driver.clone(),
        })
        .collect();
    match driver {
        DriverBinding::Bound(d) if is_vfio_driver(d) => {
            if blockers.is_empty() {
                Passable::Yes
            } else {
                Passable::GroupBlocked { group, blockers }
            }
        }
        DriverBinding::Bound(d) => Passable::NeedsRebind {
            driver: d.clone(),
            group_blockers: blockers,
        },
        DriverBinding::Unbound => Passable::NeedsBind {
            group_blockers: blockers,
        },
        DriverBinding::Unknown => Passable::Unknown {
            reason: "driver link unreadable".to_owned(),
        },
    }
}

fn member_is_harmless(driver: &DriverBinding, class: Option<u32>) -> bool {
    if class.is_some_and(pci::is_pci_bridge) {
        return true;
    }
    match driver {
        DriverBinding::Unbound => true,
        DriverBinding::Bound(d) => is_vfio_driver(d) || DMA_NEUTRAL_DRIVERS.contains(&d.as_str()),
        // If we cannot see the driver we cannot vouch for the group.
        DriverBinding::Unknown => false,
    }
}

struct Blockers<'a>(&'a [Blocker]);

impl fmt::Display for Blockers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match &b.driver {
                DriverBinding::Unknown => write!(f, "{} (driver unreadable)", b.device)?,
                d => write!(f, "{} on {d}", b.device)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Passable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Passable::Yes => f.write_str("yes"),
            Passable::NeedsRebind {
                driver,
                group_blockers,
            } => {
                write!(f, "needs rebind from {driver}")?;
                if !group_blockers.is_empty() {
                    write!(f, "; group also blocked by {}", Blockers(group_blockers))?;
                }
                Ok(())
            }
            Passable::NeedsBind { group_blockers } => {
                f.write_str("needs bind to vfio-pci (no driver)")?;
                if !group_blockers.is_empty() {
                    write!(f, "; group also blocked by {}", Blockers(group_blockers))?;
                }
                Ok(())
            }
            Passable::GroupBlocked { group, blockers } => {
                write!(f, "no: group {group} blocked by {}", Blockers(blockers))
            }
            Passable::NoIommu => {
                f.write_str("no: no iommu group (IOMMU off or not covering this device)")
            }
            Passable::Unknown { reason } => write!(f, "unknown: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::GroupMember;

    fn member(name: &str, driver: Option<&str>, class: u32) -> GroupMember {
        GroupMember {
            name: name.to_owned(),
            driver: driver.map_or(DriverBinding::Unbound, |d| DriverBinding::Bound(d.into())),
            class: Some(class),
        }
    }

    fn group(id: u32, members: Vec<GroupMember>) -> IommuGroup {
        IommuGroup {
            id,
            members,
            vfio_node: true,
            notes: Vec::new(),
        }
    }

    #[test]
    fn bridges_unbound_and_dma_neutral_members_do_not_block() {
        let groups = [group(
            1,
            vec![
                member("0000:00:01.0", Some("pcieport"), 0x060400),
                member("0000:00:01.1", Some("some-bridge-driver"), 0x060400),
                member("0000:01:00.0", Some("vfio-pci"), 0x030000),
                member("0000:01:00.1", None, 0x040300),
                member("0000:01:00.2", Some("pci-stub"), 0x0c0330),
                member("0000:01:00.3", Some("nvgrace-gpu-vfio-pci"), 0x030200),
            ],
        )];
        let vfio = DriverBinding::Bound("vfio-pci".into());
        assert_eq!(
            assess("0000:01:00.0", &vfio, Some(1), &groups),
            Passable::Yes
        );
    }

    #[test]
    fn unknown_group_and_unknown_driver_are_not_yes() {
        let vfio = DriverBinding::Bound("vfio-pci".into());
        assert!(matches!(
            assess("0000:01:00.0", &vfio, Some(9), &[]),
            Passable::Unknown { .. }
        ));
        let groups = [group(
            1,
            vec![
                member("0000:01:00.0", Some("vfio-pci"), 0x030000),
                GroupMember {
                    name: "0000:01:00.1".into(),
                    driver: DriverBinding::Unknown,
                    class: None,
                },
            ],
        )];
        let verdict = assess("0000:01:00.0", &vfio, Some(1), &groups);
        assert_eq!(
            verdict.to_string(),
            "no: group 1 blocked by 0000:01:00.1 (driver unreadable)"
        );
    }
}

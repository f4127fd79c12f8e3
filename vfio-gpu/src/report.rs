//! The human-readable report (`Display` for [`Inventory`]).
//!
//! Why separate: the inventory modules collect facts; this one decides how an
//! operator reads them — one line per topic, one line per GPU, problems last.

use std::fmt;

use crate::inventory::Inventory;
use crate::pci::PciDevice;

fn present(yes: bool) -> &'static str {
    if yes { "present" } else { "absent" }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vfio: /dev/vfio/vfio {}, iommufd: /dev/iommu {}",
            present(self.vfio.container_node),
            present(self.vfio.iommufd_node)
        )?;
        f.write_str("modules:")?;
        for m in &self.vfio.modules {
            write!(f, " {}={}", m.name, if m.present { "yes" } else { "no" })?;
        }
        writeln!(f)?;

        if self.iommu.enabled() {
            writeln!(f, "iommu: {}", self.iommu.units.join(", "))?;
        } else {
            writeln!(f, "iommu: none (no /sys/class/iommu entries)")?;
        }
        if self.groups.is_empty() {
            writeln!(f, "iommu groups: none")?;
        } else {
            let held = self.groups.iter().filter(|g| g.vfio_node).count();
            writeln!(
                f,
                "iommu groups: {} ({held} held by vfio)",
                self.groups.len()
            )?;
        }

        writeln!(f, "pci devices: {}", self.devices.len())?;
        let gpus: Vec<&PciDevice> = self.gpus().collect();
        if gpus.is_empty() {
            writeln!(f, "gpus: none found")?;
        } else {
            writeln!(f, "gpus: {}", gpus.len())?;
            for gpu in gpus {
                write_device(f, gpu)?;
            }
        }
        // A device whose class we could not read might be a GPU.
        let unclassified: Vec<&PciDevice> =
            self.devices.iter().filter(|d| d.class.is_none()).collect();
        if !unclassified.is_empty() {
            writeln!(f, "unclassified devices (class unreadable):")?;
            for dev in unclassified {
                write_device(f, dev)?;
            }
        }

        let group_notes = self
            .groups
            .iter()
            .flat_map(|g| g.notes.iter().map(move |n| (g.id, n)));
        let mut header = false;
        for note in self
            .notes
            .iter()
            .map(|n| (None, n))
            .chain(group_notes.map(|(id, n)| (Some(id), n)))
        {
            if !header {
                writeln!(f, "notes:")?;
                header = true;
            }
            match note {
                (None, n) => writeln!(f, "  {n}")?,
                (Some(id), n) => writeln!(f, "  group {id}: {n}")?,
            }
        }
        Ok(())
    }
}

/// `  0000:03:00.0 10de:2204 [0300] driver=nvidia group=12 bars: ... passable: ...`
/// followed by indented SR-IOV and note lines.
fn write_device(f: &mut fmt::Formatter<'_>, dev: &PciDevice) -> fmt::Result {
    let hex4 = |v: Option<u16>| v.map_or_else(|| "????".to_owned(), |v| format!("{v:04x}"));
    let class = dev
        .class
        .map_or_else(|| "????".to_owned(), |c| format!("{:04x}", c >> 8));
    write!(
        f,
        "  {} {}:{} [{class}] driver={}",
        dev.bdf,
        hex4(dev.vendor),
        hex4(dev.device),
        dev.driver
    )?;
    match dev.iommu_group {
        Some(g) => write!(f, " group={g}")?,
        None => write!(f, " group=none")?,
    }
    if let Some(pf) = dev.physfn {
        write!(f, " vf-of={pf}")?;
    }
    f.write_str(" bars:")?;
    if dev.bars.is_empty() {
        f.write_str(" none")?;
    }
    for bar in &dev.bars {
        write!(f, " {}={bar}", bar.index)?;
    }
    writeln!(f, " passable: {}", dev.passable)?;
    if let Some(sriov) = &dev.sriov {
        write!(f, "    sr-iov: ")?;
        match sriov.num_vfs {
            Some(n) => write!(f, "{n} of {} VFs enabled", sriov.total_vfs)?,
            None => write!(f, "? of {} VFs enabled", sriov.total_vfs)?,
        }
        if !sriov.vf_bars.is_empty() {
            f.write_str(", vf bars:")?;
            for bar in &sriov.vf_bars {
                write!(f, " {}={bar}", bar.index)?;
            }
        }
        writeln!(f)?;
    }
    for note in &dev.notes {
        writeln!(f, "    note: {note}")?;
    }
    Ok(())
}

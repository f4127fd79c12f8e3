//! KVM's GSI routing table, owned in one place.
//!
//! Why: `KVM_SET_GSI_ROUTING` replaces the whole table, including the
//! default routes of the PIC and IOAPIC pins that emulated devices (COM1)
//! rely on. So the table is rebuilt each time from the defaults plus every
//! MSI route a passed-through device has asked for. Devices get their GSIs
//! from here ([`GsiRoutes::allocate`]), above the 24 IOAPIC pins.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kvm_bindings::{
    KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER,
    KVM_IRQCHIP_PIC_SLAVE, KvmIrqRouting, kvm_irq_routing_entry,
};
use kvm_ioctls::VmFd;

use crate::devices::pci::msi::MsiMessage;

/// IOAPIC pins (GSIs 0..24 are theirs).
pub const IOAPIC_PINS: u32 = 24;
/// The most GSIs handed out for MSI.
const MAX_MSI_GSIS: u32 = 1000;

/// Why routing failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// No GSI left.
    #[error("no free GSI for MSI (at most {MAX_MSI_GSIS})")]
    Exhausted,
    /// KVM refused the table.
    #[error("KVM_SET_GSI_ROUTING: {0}")]
    Kvm(kvm_ioctls::Error),
    /// The table could not be built.
    #[error("building the GSI routing table: {0}")]
    Table(String),
}

fn irqchip(gsi: u32, chip: u32, pin: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_IRQCHIP,
        ..Default::default()
    };
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    e
}

fn msi(gsi: u32, m: MsiMessage) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        ..Default::default()
    };
    e.u.msi.address_lo = m.address as u32;
    e.u.msi.address_hi = (m.address >> 32) as u32;
    e.u.msi.data = m.data;
    e
}

/// KVM's default table: GSIs 0..16 on the PICs (except 2, the cascade) and
/// every GSI 0..24 on the same IOAPIC pin.
pub fn default_entries() -> Vec<kvm_irq_routing_entry> {
    let mut out = Vec::new();
    for gsi in 0..IOAPIC_PINS {
        if gsi < 16 && gsi != 2 {
            let chip = if gsi < 8 {
                KVM_IRQCHIP_PIC_MASTER
            } else {
                KVM_IRQCHIP_PIC_SLAVE
            };
            out.push(irqchip(gsi, chip, gsi % 8));
        }
        out.push(irqchip(gsi, KVM_IRQCHIP_IOAPIC, gsi));
    }
    out
}

#[derive(Debug, Default)]
struct State {
    next: u32,
    msi: BTreeMap<u32, MsiMessage>,
}

/// The VM's routing table.
#[derive(Debug)]
pub struct GsiRoutes {
    vm: Arc<VmFd>,
    state: Mutex<State>,
}

impl GsiRoutes {
    /// The routes of `vm` (KVM's defaults until an MSI route is set).
    pub fn new(vm: Arc<VmFd>) -> Self {
        GsiRoutes {
            vm,
            state: Mutex::new(State {
                next: IOAPIC_PINS,
                msi: BTreeMap::new(),
            }),
        }
    }

    /// The VM, for devices that register irqfds on their GSIs.
    pub fn vm(&self) -> &VmFd {
        &self.vm
    }

    /// A GSI for one MSI vector.
    pub fn allocate(&self) -> Result<u32, RouteError> {
        let mut s = self.state.lock().map_err(|_| RouteError::Exhausted)?;
        if s.next >= IOAPIC_PINS + MAX_MSI_GSIS {
            return Err(RouteError::Exhausted);
        }
        s.next += 1;
        Ok(s.next - 1)
    }

    /// Routes `gsi` to `message` (`Some`) or removes its route (`None`),
    /// and installs the new table.
    pub fn set_msi(&self, gsi: u32, message: Option<MsiMessage>) -> Result<(), RouteError> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| RouteError::Table("poisoned".into()))?;
        match message {
            Some(m) => s.msi.insert(gsi, m),
            None => s.msi.remove(&gsi),
        };
        let table = KvmIrqRouting::from_entries(&table_entries(&s.msi))
            .map_err(|e| RouteError::Table(format!("{e:?}")))?;
        self.vm.set_gsi_routing(&table).map_err(RouteError::Kvm)
    }
}

fn table_entries(msis: &BTreeMap<u32, MsiMessage>) -> Vec<kvm_irq_routing_entry> {
    let mut entries = default_entries();
    entries.extend(msis.iter().map(|(gsi, m)| msi(*gsi, *m)));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kvms_own_table() {
        let d = default_entries();
        // 15 PIC routes (no cascade) + 24 IOAPIC routes.
        assert_eq!(d.len(), 39);
        let chips: Vec<(u32, u32, u32)> = d
            .iter()
            .map(|e| {
                // SAFETY: type_ is IRQCHIP for every default entry, so the
                // irqchip member is the active one.
                let c = unsafe { e.u.irqchip };
                (e.gsi, c.irqchip, c.pin)
            })
            .collect();
        assert!(chips.contains(&(4, KVM_IRQCHIP_PIC_MASTER, 4)));
        assert!(chips.contains(&(4, KVM_IRQCHIP_IOAPIC, 4)));
        assert!(chips.contains(&(9, KVM_IRQCHIP_PIC_SLAVE, 1)));
        assert!(chips.contains(&(23, KVM_IRQCHIP_IOAPIC, 23)));
        assert!(!chips.iter().any(|c| c.0 == 2 && c.1 != KVM_IRQCHIP_IOAPIC));
    }

    #[test]
    fn msi_routes_follow_the_defaults() {
        let mut m = BTreeMap::new();
        m.insert(
            24,
            MsiMessage {
                address: 0x1_fee0_1000,
                data: 0x45,
            },
        );
        let t = table_entries(&m);
        let last = t.last().unwrap();
        assert_eq!((last.gsi, last.type_), (24, KVM_IRQ_ROUTING_MSI));
        // SAFETY: type_ is MSI, so the msi member is the active one.
        let msi = unsafe { last.u.msi };
        assert_eq!(
            (msi.address_lo, msi.address_hi, msi.data),
            (0xfee0_1000, 1, 0x45)
        );
    }
}

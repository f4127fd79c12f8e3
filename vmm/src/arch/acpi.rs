//! ACPI tables, built by the VMM and placed in the BIOS area at 0xE0000.
//!
//! The set is the smallest that every guest we boot accepts:
//! - the RSDP (revision 2) carrying **both** an RSDT and an XSDT address —
//!   seL4 follows only the 32-bit RSDT, Linux prefers the XSDT;
//! - a MADT with one enabled local APIC per vCPU (APIC id = vCPU index), one
//!   IOAPIC at GSI base 0, the LINT1 NMI, and PC/AT-compatible PICs;
//! - a hardware-reduced FADT pointing at a DSDT whose AML describes COM1
//!   (`PNP0501`, ports 0x3F8..0x3FF, GSI 4): on a hardware-reduced machine
//!   Linux maps no legacy ISA IRQs, so without this its 8250 driver cannot
//!   get IRQ 4 and the console cannot be opened by init; the virtio-mmio
//!   devices join it once they exist.
//!
//! Generic table framing (header, checksum) comes from the rust-vmm
//! `acpi_tables` crate; the RSDP is built here because the crate's RSDP has
//! no RSDT field.

use acpi_tables::Aml;
use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, Device, EISAName, IO, Interrupt, Memory32Fixed, Name,
    ResourceTemplate,
};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::sdt::Sdt;

use super::layout::{ACPI_END, ACPI_START, IOAPIC_BASE, LAPIC_BASE};

const OEM_ID: [u8; 6] = *b"COCO  ";
const OEM_TABLE_ID: [u8; 8] = *b"COCOVMM ";
const OEM_REVISION: u32 = 1;
const HEADER_LEN: u32 = 36;
const RSDP_LEN: usize = 36;

/// MADT flag: the machine also has dual 8259 PICs.
const MADT_PCAT_COMPAT: u32 = 1;
/// IA-PC boot architecture flags: no VGA, no CMOS RTC.
const IAPC_NO_VGA: u16 = 1 << 2;
const IAPC_NO_CMOS_RTC: u16 = 1 << 5;

/// The tables, laid out for guest address [`ACPI_START`]; the RSDP is first.
#[derive(Debug, Clone)]
pub struct AcpiTables {
    /// Bytes to copy to guest memory at [`AcpiTables::base`].
    pub bytes: Vec<u8>,
}

impl AcpiTables {
    /// Guest-physical address of the first byte (and of the RSDP).
    pub const fn base() -> u64 {
        ACPI_START
    }

    /// Guest-physical address of the RSDP.
    pub const fn rsdp_address() -> u64 {
        ACPI_START
    }
}

/// Errors building the tables.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AcpiError {
    /// The tables outgrew the BIOS area.
    #[error("ACPI tables need {0} bytes, more than the BIOS area holds")]
    TooLarge(usize),
    /// No vCPUs.
    #[error("a machine needs at least one vCPU")]
    NoVcpus,
}

fn align16(n: usize) -> usize {
    (n + 15) & !15
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

fn table(signature: &[u8; 4], revision: u8) -> Sdt {
    Sdt::new(
        *signature,
        HEADER_LEN,
        revision,
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
    )
}

/// AML of `\_SB_.COM1`: a 16550 at 0x3F8 (8 ports) on edge, active-high
/// GSI 4 (the COM1 irqfd).
fn com1_aml() -> Vec<u8> {
    let mut aml = Vec::new();
    Device::new(
        "_SB_.COM1".into(),
        vec![
            &Name::new("_HID".into(), &EISAName::new("PNP0501")),
            &Name::new("_UID".into(), &0u8),
            &Name::new(
                "_CRS".into(),
                &ResourceTemplate::new(vec![
                    &Interrupt::new(true, true, false, false, 4),
                    &IO::new(0x3f8, 0x3f8, 0, 8),
                ]),
            ),
        ],
    )
    .to_aml_bytes(&mut aml);
    aml
}

/// A virtio-mmio window the DSDT announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioWindow {
    /// Guest-physical base of the 4 KiB window.
    pub base: u32,
    /// Its GSI (edge, active high, through the irqfd).
    pub gsi: u32,
}

/// AML of `\_SB_.Vnn`: a virtio-mmio window as QEMU microvm and Firecracker
/// describe it (`LNRO0005`), which is how Debian's stock kernel — built
/// without `virtio_mmio.device=` command-line discovery — finds it.
fn virtio_aml(index: usize, window: &VirtioWindow) -> Vec<u8> {
    let mut aml = Vec::new();
    let uid = index as u32;
    Device::new(
        format!("_SB_.V{index:03}").as_str().into(),
        vec![
            &Name::new("_HID".into(), &"LNRO0005"),
            &Name::new("_UID".into(), &uid),
            &Name::new("_CCA".into(), &acpi_tables::aml::ONE),
            &Name::new(
                "_CRS".into(),
                &ResourceTemplate::new(vec![
                    &Memory32Fixed::new(true, window.base, 0x1000),
                    &Interrupt::new(true, true, false, false, window.gsi),
                ]),
            ),
        ],
    )
    .to_aml_bytes(&mut aml);
    aml
}

/// The PCI host bridge's resources: bus 0 only, and the memory window the
/// VMM places BARs in (`start..=end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciWindow {
    /// First address of the BAR window.
    pub start: u32,
    /// Last address of the BAR window (inclusive).
    pub end: u32,
}

/// AML of `\_SB_.PCI0`: a `PNP0A03` root bridge with bus 0, the
/// configuration ports 0xCF8..0xCFF and the BAR window. Linux scans a PCI
/// root only when ACPI describes one (and then keeps BARs that lie in its
/// window as they are); guest-kernel probes mechanism #1 directly.
fn pci_host_aml(window: &PciWindow) -> Vec<u8> {
    let mut aml = Vec::new();
    Device::new(
        "_SB_.PCI0".into(),
        vec![
            &Name::new("_HID".into(), &EISAName::new("PNP0A03")),
            &Name::new("_UID".into(), &0u32),
            &Name::new("_SEG".into(), &0u32),
            &Name::new("_BBN".into(), &0u32),
            &Name::new(
                "_CRS".into(),
                &ResourceTemplate::new(vec![
                    &AddressSpace::new_bus_number(0u16, 0u16),
                    &IO::new(0xcf8, 0xcf8, 1, 8),
                    &AddressSpace::new_memory(
                        AddressSpaceCacheable::NotCacheable,
                        true,
                        window.start,
                        window.end,
                        None,
                    ),
                ]),
            ),
        ],
    )
    .to_aml_bytes(&mut aml);
    aml
}

fn dsdt(virtio: &[VirtioWindow], pci: Option<&PciWindow>) -> Vec<u8> {
    let mut t = table(b"DSDT", 2);
    t.append_slice(&com1_aml());
    for (i, w) in virtio.iter().enumerate() {
        t.append_slice(&virtio_aml(i, w));
    }
    if let Some(w) = pci {
        t.append_slice(&pci_host_aml(w));
    }
    t.update_checksum();
    t.as_slice().to_vec()
}

fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut builder = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    builder.dsdt = (dsdt_addr as u32).into();
    builder.iapc_boot_arch = (IAPC_NO_VGA | IAPC_NO_CMOS_RTC).into();
    let mut bytes = Vec::new();
    builder.finalize().to_aml_bytes(&mut bytes);
    bytes
}

fn madt(vcpus: u8) -> Vec<u8> {
    let mut t = table(b"APIC", 5);
    let mut body = Vec::new();
    body.extend_from_slice(&(LAPIC_BASE as u32).to_le_bytes());
    body.extend_from_slice(&MADT_PCAT_COMPAT.to_le_bytes());
    for id in 0..vcpus {
        // Type 0: processor local APIC, enabled.
        body.extend_from_slice(&[0, 8, id, id]);
        body.extend_from_slice(&1u32.to_le_bytes());
    }
    // Type 1: IOAPIC id = vcpus (distinct from every LAPIC id), GSI base 0.
    body.extend_from_slice(&[1, 12, vcpus, 0]);
    body.extend_from_slice(&(IOAPIC_BASE as u32).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    // Type 4: local APIC NMI on LINT1 for all processors.
    body.extend_from_slice(&[4, 6, 0xff, 0, 0, 1]);
    t.append_slice(&body);
    t.update_checksum();
    t.as_slice().to_vec()
}

fn rsdt(entries: &[u64]) -> Vec<u8> {
    let mut t = table(b"RSDT", 1);
    for e in entries {
        t.append_slice(&(*e as u32).to_le_bytes());
    }
    t.update_checksum();
    t.as_slice().to_vec()
}

fn xsdt(entries: &[u64]) -> Vec<u8> {
    let mut t = table(b"XSDT", 1);
    for e in entries {
        t.append_slice(&e.to_le_bytes());
    }
    t.update_checksum();
    t.as_slice().to_vec()
}

fn rsdp(rsdt_addr: u64, xsdt_addr: u64) -> [u8; RSDP_LEN] {
    let mut r = [0u8; RSDP_LEN];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(&OEM_ID);
    r[15] = 2;
    r[16..20].copy_from_slice(&(rsdt_addr as u32).to_le_bytes());
    r[20..24].copy_from_slice(&(RSDP_LEN as u32).to_le_bytes());
    r[24..32].copy_from_slice(&xsdt_addr.to_le_bytes());
    r[8] = checksum(&r[0..20]);
    r[32] = checksum(&r);
    r
}

/// Builds every table for a machine with `vcpus` processors and no virtio devices.
pub fn build(vcpus: u8) -> Result<AcpiTables, AcpiError> {
    build_with(vcpus, &[], None)
}

/// Builds every table for a machine with `vcpus` processors whose DSDT
/// announces the `virtio` windows and, when the machine has a PCI bus, its
/// host bridge.
pub fn build_with(
    vcpus: u8,
    virtio: &[VirtioWindow],
    pci: Option<PciWindow>,
) -> Result<AcpiTables, AcpiError> {
    if vcpus == 0 {
        return Err(AcpiError::NoVcpus);
    }
    // Lay the tables out one after another, 16-byte aligned, after the RSDP.
    let mut blob = vec![0u8; align16(RSDP_LEN)];
    let place = |bytes: &[u8], blob: &mut Vec<u8>| -> u64 {
        let at = blob.len();
        blob.extend_from_slice(bytes);
        blob.resize(align16(blob.len()), 0);
        ACPI_START + at as u64
    };
    let dsdt_addr = place(&dsdt(virtio, pci.as_ref()), &mut blob);
    let fadt_addr = place(&fadt(dsdt_addr), &mut blob);
    let madt_addr = place(&madt(vcpus), &mut blob);
    let entries = [fadt_addr, madt_addr];
    let rsdt_addr = place(&rsdt(&entries), &mut blob);
    let xsdt_addr = place(&xsdt(&entries), &mut blob);
    blob[..RSDP_LEN].copy_from_slice(&rsdp(rsdt_addr, xsdt_addr));
    if blob.len() as u64 > ACPI_END - ACPI_START {
        return Err(AcpiError::TooLarge(blob.len()));
    }
    Ok(AcpiTables { bytes: blob })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    /// Returns the table at guest address `addr`, checking its checksum.
    fn table_at(blob: &[u8], addr: u64) -> &[u8] {
        let off = (addr - ACPI_START) as usize;
        let len = u32_at(blob, off + 4) as usize;
        let t = &blob[off..off + len];
        assert_eq!(
            t.iter().fold(0u8, |a, b| a.wrapping_add(*b)),
            0,
            "checksum of {}",
            String::from_utf8_lossy(&t[0..4])
        );
        t
    }

    #[test]
    fn rsdp_checksums_and_pointers() {
        let blob = build(2).unwrap().bytes;
        let r = &blob[..RSDP_LEN];
        assert_eq!(&r[0..8], b"RSD PTR ");
        assert_eq!(r[15], 2, "revision 2 (ACPI 2.0+)");
        assert_eq!(r[0..20].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(r.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(&table_at(&blob, u64::from(u32_at(r, 16)))[0..4], b"RSDT");
        assert_eq!(&table_at(&blob, u64_at(r, 24))[0..4], b"XSDT");
    }

    #[test]
    fn dsdt_describes_com1_with_its_ports_and_gsi() {
        let blob = build(1).unwrap().bytes;
        let fadt_addr = {
            let xsdt = table_at(&blob, u64_at(&blob, 24));
            u64_at(xsdt, 36)
        };
        let fadt = table_at(&blob, fadt_addr);
        let dsdt = table_at(&blob, u64_at(fadt, 140));
        let body = &dsdt[36..];
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"COM1"));
        // _HID EisaId("PNP0501").
        assert!(has(&[0x0c, 0x41, 0xd0, 0x05, 0x01]));
        // Extended IRQ descriptor: consumer, edge, active high, GSI 4.
        assert!(has(&[0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00]));
        // IO descriptor: decode16, 0x3f8..0x3f8, 8 ports.
        assert!(has(&[0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08]));
    }

    #[test]
    fn dsdt_announces_each_virtio_window_as_lnro0005_with_its_memory_and_gsi() {
        let windows = [
            VirtioWindow {
                base: 0xd000_0000,
                gsi: 5,
            },
            VirtioWindow {
                base: 0xd000_1000,
                gsi: 6,
            },
        ];
        let blob = build_with(1, &windows, None).unwrap().bytes;
        let fadt = table_at(&blob, u64_at(table_at(&blob, u64_at(&blob, 24)), 36));
        let dsdt = table_at(&blob, u64_at(fadt, 140));
        let body = &dsdt[36..];
        let count = |needle: &[u8]| body.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(b"LNRO0005\0"), 2);
        assert_eq!(count(b"V000"), 1);
        assert_eq!(count(b"V001"), 1);
        // Memory32Fixed, read-write, base 0xd0000000 / 0xd0001000, length 0x1000.
        assert_eq!(
            count(&[
                0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00
            ]),
            1
        );
        assert_eq!(
            count(&[
                0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00
            ]),
            1
        );
        // Extended IRQ descriptors for GSI 5 and 6.
        assert_eq!(
            count(&[0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00]),
            1
        );
        assert_eq!(
            count(&[0x89, 0x06, 0x00, 0x03, 0x01, 0x06, 0x00, 0x00, 0x00]),
            1
        );
        // And no virtio device without windows.
        let plain = build(1).unwrap().bytes;
        assert!(!plain.windows(8).any(|w| w == b"LNRO0005"));
    }

    fn dsdt_body(blob: &[u8]) -> Vec<u8> {
        let fadt = table_at(blob, u64_at(table_at(blob, u64_at(blob, 24)), 36));
        table_at(blob, u64_at(fadt, 140))[36..].to_vec()
    }

    #[test]
    fn a_pci_bus_is_described_as_a_pnp0a03_root_with_its_ports_and_bar_window() {
        let window = PciWindow {
            start: 0xe000_0000,
            end: 0xfebf_ffff,
        };
        let body = dsdt_body(&build_with(1, &[], Some(window)).unwrap().bytes);
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"PCI0"));
        // _HID EisaId("PNP0A03").
        assert!(has(&[0x0c, 0x41, 0xd0, 0x0a, 0x03]));
        // Word bus number descriptor: bus 0..=0, length 1.
        assert!(has(&[
            0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x00
        ]));
        // IO descriptor: decode16, 0xcf8..0xcf8, 8 ports.
        assert!(has(&[0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08]));
        // DWord memory descriptor: read-write, min 0xe0000000, max 0xfebfffff.
        assert!(has(&[
            0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0,
            0xff, 0xff, 0xbf, 0xfe
        ]));
        let none = dsdt_body(&build(1).unwrap().bytes);
        assert!(!none.windows(4).any(|w| w == b"PCI0"), "no bus, no root");
    }

    #[test]
    fn rsdt_and_xsdt_list_the_same_valid_tables() {
        let blob = build(1).unwrap().bytes;
        let rsdt = table_at(&blob, u64::from(u32_at(&blob, 16)));
        let xsdt = table_at(&blob, u64_at(&blob, 24));
        let from_rsdt: Vec<u64> = rsdt[36..]
            .chunks(4)
            .map(|c| u64::from(u32::from_le_bytes(c.try_into().unwrap())))
            .collect();
        let from_xsdt: Vec<u64> = xsdt[36..]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(from_rsdt, from_xsdt);
        let sigs: Vec<&[u8]> = from_xsdt
            .iter()
            .map(|a| &table_at(&blob, *a)[0..4])
            .collect();
        assert_eq!(sigs, vec![&b"FACP"[..], &b"APIC"[..]]);
        // The FADT points at a valid DSDT through both fields.
        let fadt = table_at(&blob, from_xsdt[0]);
        let dsdt32 = u64::from(u32_at(fadt, 40));
        let dsdt64 = u64_at(fadt, 140);
        assert_eq!(dsdt32, dsdt64);
        assert_eq!(&table_at(&blob, dsdt64)[0..4], b"DSDT");
        assert_ne!(u32_at(fadt, 112) & (1 << 20), 0, "hardware-reduced");
    }

    #[test]
    fn madt_has_one_enabled_lapic_per_vcpu_and_an_ioapic() {
        for vcpus in [1u8, 2, 8, 255] {
            let blob = build(vcpus).unwrap().bytes;
            let xsdt = table_at(&blob, u64_at(&blob, 24));
            let madt = table_at(&blob, u64_at(xsdt, 36 + 8));
            assert_eq!(&madt[0..4], b"APIC");
            assert_eq!(u64::from(u32_at(madt, 36)), LAPIC_BASE);
            let mut off = 44;
            let (mut lapics, mut ioapics) = (Vec::new(), 0);
            while off < madt.len() {
                let (kind, len) = (madt[off], madt[off + 1] as usize);
                assert!(len >= 2);
                match kind {
                    0 => {
                        assert_eq!(u32_at(madt, off + 4) & 1, 1, "enabled");
                        lapics.push(madt[off + 3]);
                    }
                    1 => {
                        ioapics += 1;
                        assert_eq!(u64::from(u32_at(madt, off + 4)), IOAPIC_BASE);
                        assert_eq!(madt[off + 2], vcpus, "IOAPIC id distinct from LAPIC ids");
                    }
                    _ => {}
                }
                off += len;
            }
            assert_eq!(off, madt.len());
            assert_eq!(lapics, (0..vcpus).collect::<Vec<_>>());
            assert_eq!(ioapics, 1);
        }
    }

    #[test]
    fn tables_fit_in_the_bios_area() {
        let blob = build(255).unwrap().bytes;
        assert!(blob.len() as u64 <= ACPI_END - ACPI_START);
        assert_eq!(build(0).unwrap_err(), AcpiError::NoVcpus);
    }
}

//! Inventory over fake sysfs trees, plus one smoke run on the real host.

mod fakehost;

use coco_vfio_gpu::Inventory;
use coco_vfio_gpu::Passable;
use coco_vfio_gpu::passable::Blocker;
use coco_vfio_gpu::pci::{Bdf, DriverBinding, GpuKind};
use fakehost::FakeHost;

/// Flags as the kernel prints them: MEM | SIZEALIGN.
const MEM32: u64 = 0x0004_0200;
/// MEM | PREFETCH | SIZEALIGN | MEM_64 (and the BAR's low type bits).
const MEM64_PREF: u64 = 0x0014_220c;
/// IO | SIZEALIGN.
const IO: u64 = 0x0004_0101;

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

fn vfio_pci() -> DriverBinding {
    DriverBinding::Bound("vfio-pci".into())
}

/// An NVIDIA-like GPU's BARs: 16MiB registers, 256MiB 64-bit prefetchable
/// aperture, 32MiB 64-bit prefetchable, 128 bytes of I/O ports, 512KiB ROM.
fn gpu_bars(host: &FakeHost, gpu: &str) {
    host.resource(
        gpu,
        &[
            (0xfb00_0000, 0xfbff_ffff, MEM32),
            (0xe0_0000_0000, 0xe0_0fff_ffff, MEM64_PREF),
            (0, 0, 0),
            (0xe0_1000_0000, 0xe0_11ff_ffff, MEM64_PREF),
            (0, 0, 0),
            (0xe000, 0xe07f, IO),
            (0xfc00_0000, 0xfc07_ffff, 0x0004_6200),
        ],
    );
}

#[test]
fn no_iommu_gpu_on_vendor_driver() {
    let host = FakeHost::new();
    host.device("0000:00:00.0", 0x8086, 0x0d57, 0x060000);
    host.device("0000:01:00.0", 0x10de, 0x2204, 0x030000);
    gpu_bars(&host, "0000:01:00.0");
    host.bind("0000:01:00.0", "nvidia");

    let inv = Inventory::probe_at(host.root());
    assert!(!inv.vfio.container_node && !inv.vfio.iommufd_node);
    assert!(inv.vfio.modules.iter().all(|m| !m.present));
    assert!(!inv.iommu.enabled());
    assert!(inv.groups.is_empty());
    assert_eq!(inv.devices.len(), 2);
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);

    let gpus: Vec<_> = inv.gpus().collect();
    assert_eq!(gpus.len(), 1);
    let gpu = gpus[0];
    assert_eq!(gpu.bdf, bdf("0000:01:00.0"));
    assert_eq!((gpu.vendor, gpu.device), (Some(0x10de), Some(0x2204)));
    assert_eq!(gpu.gpu, Some(GpuKind::Vga));
    assert_eq!(gpu.driver, DriverBinding::Bound("nvidia".into()));
    assert_eq!(gpu.iommu_group, None);
    assert_eq!(gpu.passable, Passable::NoIommu);
    assert!(gpu.notes.is_empty(), "{:?}", gpu.notes);
    assert_eq!(gpu.rom.as_ref().map(|r| r.size), Some(512 << 10));

    let report = inv.to_string();
    assert!(
        report.contains("vfio: /dev/vfio/vfio absent, iommufd: /dev/iommu absent\n"),
        "{report}"
    );
    assert!(
        report.contains("iommu: none (no /sys/class/iommu entries)\n"),
        "{report}"
    );
    assert!(
        report.contains(
            "  0000:01:00.0 10de:2204 [0300] driver=nvidia group=none bars: 0=16MiB \
         1=256MiB(64-bit,prefetch) 3=32MiB(64-bit,prefetch) 5=128B(io) \
         passable: no: no iommu group (IOMMU off or not covering this device)\n"
        ),
        "{report}"
    );
}

/// dmar0, VFIO loaded, a GPU and its HDMI audio function in group 12 behind
/// a root port on `pcieport`, all usable.
fn passable_host() -> FakeHost {
    let host = FakeHost::new();
    host.vfio_nodes();
    host.modules(&["vfio", "vfio_pci", "vfio_iommu_type1", "iommufd"]);
    host.iommu_unit("dmar0");
    host.iommu_unit("dmar1");

    host.device("0000:00:01.0", 0x8086, 0x1901, 0x060400);
    host.bind("0000:00:01.0", "pcieport");
    host.group("0000:00:01.0", 12);
    host.device("0000:03:00.0", 0x10de, 0x2204, 0x030000);
    gpu_bars(&host, "0000:03:00.0");
    host.bind("0000:03:00.0", "vfio-pci");
    host.group("0000:03:00.0", 12);
    host.device("0000:03:00.1", 0x10de, 0x1aef, 0x040300);
    host.bind("0000:03:00.1", "vfio-pci");
    host.group("0000:03:00.1", 12);
    host.vfio_group_node(12);
    host
}

#[test]
fn gpu_and_audio_on_vfio_pci_are_passable() {
    let host = passable_host();
    let inv = Inventory::probe_at(host.root());
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
    assert!(inv.vfio.container_node && inv.vfio.iommufd_node);
    assert!(inv.vfio.modules.iter().all(|m| m.present));
    assert_eq!(inv.iommu.units, ["dmar0", "dmar1"]);

    let group = inv.group(12).expect("group 12");
    assert!(group.vfio_node);
    let members: Vec<_> = group.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(members, ["0000:00:01.0", "0000:03:00.0", "0000:03:00.1"]);
    assert_eq!(group.members[0].class, Some(0x060400));

    let gpu = inv.device(bdf("0000:03:00.0")).unwrap();
    assert_eq!(gpu.iommu_group, Some(12));
    assert_eq!(gpu.driver, vfio_pci());
    assert_eq!(gpu.passable, Passable::Yes);
    // The audio function is passable too but is not a GPU.
    let audio = inv.device(bdf("0000:03:00.1")).unwrap();
    assert_eq!(audio.passable, Passable::Yes);
    assert!(!audio.is_gpu());
    assert_eq!(inv.gpus().count(), 1);

    let report = inv.to_string();
    let expected = "\
vfio: /dev/vfio/vfio present, iommufd: /dev/iommu present
modules: vfio=yes vfio_pci=yes vfio_iommu_type1=yes iommufd=yes
iommu: dmar0, dmar1
iommu groups: 1 (1 held by vfio)
pci devices: 3
gpus: 1
  0000:03:00.0 10de:2204 [0300] driver=vfio-pci group=12 bars: 0=16MiB 1=256MiB(64-bit,prefetch) 3=32MiB(64-bit,prefetch) 5=128B(io) passable: yes
";
    assert_eq!(report, expected);
}

#[test]
fn json_carries_the_same_facts() {
    let host = passable_host();
    let inv = Inventory::probe_at(host.root());
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["iommu"]["units"][0], "dmar0");
    assert_eq!(json["vfio"]["modules"][1]["name"], "vfio_pci");
    assert_eq!(json["groups"][0]["id"], 12);
    let gpu = &json["devices"][1];
    assert_eq!(gpu["bdf"], "0000:03:00.0");
    assert_eq!(gpu["vendor"], 0x10de);
    assert_eq!(gpu["gpu"], "vga");
    assert_eq!(gpu["driver"]["state"], "bound");
    assert_eq!(gpu["driver"]["name"], "vfio-pci");
    assert_eq!(gpu["passable"]["status"], "yes");
    assert_eq!(gpu["bars"][1]["index"], 1);
    assert_eq!(gpu["bars"][1]["size"], 256u64 << 20);
    assert_eq!(gpu["bars"][1]["mem64"], true);
    assert_eq!(gpu["bars"][1]["prefetchable"], true);
    assert_eq!(gpu["bars"][0]["mem64"], false);
}

#[test]
fn sibling_on_another_driver_blocks_the_group() {
    let host = passable_host();
    // Group 13: GPU on vfio-pci, its audio function still on snd_hda_intel.
    host.device("0000:04:00.0", 0x1002, 0x73bf, 0x030000);
    host.bind("0000:04:00.0", "vfio-pci");
    host.group("0000:04:00.0", 13);
    host.device("0000:04:00.1", 0x1002, 0xab28, 0x040300);
    host.bind("0000:04:00.1", "snd_hda_intel");
    host.group("0000:04:00.1", 13);
    // Group 14: GPU still on nvidia and an unbound audio function (harmless)
    // plus a USB controller on xhci_hcd (blocks).
    host.device("0000:05:00.0", 0x10de, 0x2684, 0x030000);
    host.bind("0000:05:00.0", "nvidia");
    host.group("0000:05:00.0", 14);
    host.device("0000:05:00.1", 0x10de, 0x22ba, 0x040300);
    host.group("0000:05:00.1", 14);
    host.device("0000:05:00.2", 0x10de, 0x1ad8, 0x0c0330);
    host.bind("0000:05:00.2", "xhci_hcd");
    host.group("0000:05:00.2", 14);
    // Group 15: a compute GPU with no driver at all.
    host.device("0000:06:00.0", 0x10de, 0x20b5, 0x030200);
    host.group("0000:06:00.0", 15);

    let inv = Inventory::probe_at(host.root());
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);

    let blocked = inv.device(bdf("0000:04:00.0")).unwrap();
    assert_eq!(
        blocked.passable,
        Passable::GroupBlocked {
            group: 13,
            blockers: vec![Blocker {
                device: "0000:04:00.1".into(),
                driver: DriverBinding::Bound("snd_hda_intel".into()),
            }],
        }
    );
    let rebind = inv.device(bdf("0000:05:00.0")).unwrap();
    assert_eq!(
        rebind.passable,
        Passable::NeedsRebind {
            driver: "nvidia".into(),
            group_blockers: vec![Blocker {
                device: "0000:05:00.2".into(),
                driver: DriverBinding::Bound("xhci_hcd".into()),
            }],
        }
    );
    let unbound = inv.device(bdf("0000:06:00.0")).unwrap();
    assert_eq!(unbound.gpu, Some(GpuKind::ThreeD));
    assert_eq!(
        unbound.passable,
        Passable::NeedsBind {
            group_blockers: vec![]
        }
    );

    let report = inv.to_string();
    assert!(report.contains("gpus: 4\n"), "{report}");
    assert!(
        report.contains("passable: no: group 13 blocked by 0000:04:00.1 on snd_hda_intel\n"),
        "{report}"
    );
    assert!(
        report.contains(
            "passable: needs rebind from nvidia; group also blocked by 0000:05:00.2 on xhci_hcd\n"
        ),
        "{report}"
    );
    assert!(
        report.contains("0000:06:00.0 10de:20b5 [0302] driver=none group=15 bars: none passable: needs bind to vfio-pci (no driver)\n"),
        "{report}"
    );
    assert!(
        report.contains("iommu groups: 4 (1 held by vfio)\n"),
        "{report}"
    );
}

#[test]
fn sriov_pf_and_its_vfs() {
    let host = FakeHost::new();
    host.iommu_unit("ivhd0");
    host.vfio_nodes();
    let pf = "0000:41:00.0";
    let vfs = ["0000:41:00.4", "0000:41:00.5"];
    host.device(pf, 0x1002, 0x74a1, 0x120000);
    host.bind(pf, "amdgpu");
    host.group(pf, 30);
    host.resource(
        pf,
        &[
            (0x80_0000_0000, 0x83_ffff_ffff, MEM64_PREF), // 16GiB VRAM
            (0, 0, 0),
            (0xf000_0000, 0xf07f_ffff, MEM64_PREF),
            (0, 0, 0),
            (0, 0, 0),
            (0xfd00_0000, 0xfd0f_ffff, MEM32),
            (0, 0, 0),
            // VF BAR 0: 2GiB per VF; VF BAR 5: 1MiB per VF.
            (0x90_0000_0000, 0x90_ffff_ffff, MEM64_PREF),
            (0, 0, 0),
            (0, 0, 0),
            (0, 0, 0),
            (0, 0, 0),
            (0xfe00_0000, 0xfe1f_ffff, MEM32),
        ],
    );
    for (i, vf) in vfs.iter().enumerate() {
        host.device(vf, 0x1002, 0x7410, 0x120000);
        host.bind(vf, "vfio-pci");
        host.group(vf, 31 + i as u32);
        host.vfio_group_node(31 + i as u32);
        host.resource(
            vf,
            &[(
                0x90_0000_0000 + ((i as u64) << 31),
                0x90_7fff_ffff + ((i as u64) << 31),
                MEM64_PREF,
            )],
        );
    }
    host.sriov(pf, 16, &vfs);

    let inv = Inventory::probe_at(host.root());
    assert!(inv.notes.is_empty(), "{:?}", inv.notes);
    let pf_dev = inv.device(bdf(pf)).unwrap();
    assert_eq!(pf_dev.gpu, Some(GpuKind::Accelerator));
    let sriov = pf_dev.sriov.as_ref().expect("sr-iov");
    assert_eq!((sriov.total_vfs, sriov.num_vfs), (16, Some(2)));
    let vf_bars: Vec<_> = sriov.vf_bars.iter().map(|b| (b.index, b.size)).collect();
    assert_eq!(vf_bars, [(0, 4u64 << 30), (5, 2 << 20)]);
    assert_eq!(pf_dev.bars[0].size, 16 << 30);
    assert!(matches!(pf_dev.passable, Passable::NeedsRebind { .. }));
    assert!(pf_dev.physfn.is_none());

    for vf in vfs {
        let d = inv.device(bdf(vf)).unwrap();
        assert_eq!(d.physfn, Some(bdf(pf)), "{vf}");
        assert!(d.sriov.is_none());
        assert_eq!(d.passable, Passable::Yes, "{vf}");
        assert_eq!(d.bars[0].size, 2 << 30);
    }

    let report = inv.to_string();
    assert!(
        report.contains("0000:41:00.0 1002:74a1 [1200] driver=amdgpu group=30 bars: 0=16GiB(64-bit,prefetch) 2=8MiB(64-bit,prefetch) 5=1MiB passable: needs rebind from amdgpu\n    sr-iov: 2 of 16 VFs enabled, vf bars: 0=4GiB(64-bit,prefetch) 5=2MiB\n"),
        "{report}"
    );
    assert!(
        report.contains("0000:41:00.4 1002:7410 [1200] driver=vfio-pci group=31 vf-of=0000:41:00.0 bars: 0=2GiB(64-bit,prefetch) passable: yes\n"),
        "{report}"
    );
}

#[test]
fn malformed_files_become_notes() {
    let host = FakeHost::new();
    host.iommu_unit("dmar0");
    let gpu = "0000:07:00.0";
    host.device(gpu, 0x10de, 0x2204, 0x030000);
    host.write(&format!("{}/vendor", FakeHost::dev_dir(gpu)), "banana\n");
    host.write(&format!("{}/device", FakeHost::dev_dir(gpu)), "0x123456\n");
    host.write(
        &format!("{}/resource", FakeHost::dev_dir(gpu)),
        "0x1000 0x1fff 0x200\nnot a resource line\n0x3000 0x2fff 0x200\n\u{1F600}\n0xfb000000 0xfbffffff 0x40200\n",
    );
    host.write(
        &format!("{}/sriov_totalvfs", FakeHost::dev_dir(gpu)),
        "lots\n",
    );
    host.bind(gpu, "vfio-pci");
    // The group link names something that is not a number.
    host.link(
        &format!("{}/iommu_group", FakeHost::dev_dir(gpu)),
        "../../../kernel/iommu_groups/abc",
    );
    host.mkdir("sys/kernel/iommu_groups/abc/devices");
    // A device whose class is unreadable garbage and whose `resource` is a
    // directory, not a file.
    let odd = "0000:08:00.0";
    host.device(odd, 0x1234, 0x5678, 0x030000);
    host.write(&format!("{}/class", FakeHost::dev_dir(odd)), "0x1000000\n");
    std::fs::remove_file(host.root().join(FakeHost::dev_dir(odd)).join("resource")).unwrap();
    host.mkdir(&format!("{}/resource", FakeHost::dev_dir(odd)));
    // Not a PCI address at all.
    host.mkdir("sys/bus/pci/devices/not-a-bdf");
    // A group with no devices directory, and a member entry that is a plain
    // directory without a driver link or class.
    host.mkdir("sys/kernel/iommu_groups/40");
    host.mkdir("sys/kernel/iommu_groups/41/devices/platform-thing");

    let inv = Inventory::probe_at(host.root());
    assert_eq!(inv.devices.len(), 2);
    assert!(
        inv.notes.iter().any(|n| n.contains("not-a-bdf")),
        "{:?}",
        inv.notes
    );
    assert!(
        inv.notes.iter().any(|n| n.contains("\"abc\"")),
        "{:?}",
        inv.notes
    );
    assert_eq!(
        inv.groups.iter().map(|g| g.id).collect::<Vec<_>>(),
        [40, 41]
    );
    assert_eq!(inv.group(40).unwrap().notes.len(), 1);
    let member = &inv.group(41).unwrap().members[0];
    assert_eq!(member.driver, DriverBinding::Unbound);
    assert_eq!(member.class, None);

    let d = inv.device(bdf(gpu)).unwrap();
    assert_eq!(d.vendor, None);
    assert_eq!(d.device, None);
    assert_eq!(d.class, Some(0x030000));
    assert!(d.sriov.is_none());
    // Only the well-formed resource lines survive; index 4 is line 4.
    let bars: Vec<_> = d.bars.iter().map(|b| (b.index, b.size)).collect();
    assert_eq!(bars, [(0, 0x1000), (4, 16 << 20)]);
    assert!(
        matches!(d.passable, Passable::Unknown { .. }),
        "{:?}",
        d.passable
    );
    let joined = d.notes.join("\n");
    for expected in [
        "vendor",
        "device",
        "resource line 1",
        "resource line 2",
        "resource line 3",
        "sriov_totalvfs",
        "iommu_group",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in\n{joined}"
        );
    }

    let o = inv.device(bdf(odd)).unwrap();
    assert_eq!(o.class, None);
    assert!(o.bars.is_empty());
    assert_eq!(o.notes.len(), 2, "{:?}", o.notes);

    let report = inv.to_string();
    assert!(
        report.contains("  0000:07:00.0 ????:???? [0300] driver=vfio-pci group=none"),
        "{report}"
    );
    assert!(
        report
            .contains("unclassified devices (class unreadable):\n  0000:08:00.0 1234:5678 [????]"),
        "{report}"
    );
    assert!(report.contains("    note: "), "{report}");
    assert!(report.contains("notes:\n"), "{report}");
}

#[test]
fn missing_pci_bus() {
    let host = FakeHost::new();
    let inv = Inventory::probe_at(host.root());
    assert!(inv.devices.is_empty());
    assert!(inv.groups.is_empty());
    assert_eq!(inv.notes.len(), 1, "{:?}", inv.notes);
    assert!(inv.notes[0].contains("no PCI bus visible"));
    let report = inv.to_string();
    assert!(report.contains("gpus: none found\n"), "{report}");
    assert!(report.contains("iommu groups: none\n"), "{report}");
}

#[test]
fn real_host_probe_returns() {
    let inv = Inventory::probe();
    // Whatever this machine has, the report and JSON render.
    let report = inv.to_string();
    assert!(report.starts_with("vfio: "));
    serde_json::to_string(&inv).unwrap();
    println!("{report}");
}

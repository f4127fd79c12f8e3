//! Building the hive: the fixed namespace tree from the spec, and resuming
//! from the audit journal (history for `/log/queen.log`, worker numbering).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crate::audit::AuditJournal;
use crate::budget::SpawnBudget;
use crate::clock::Clock;
use crate::config::{HiveSpec, SpecError};
use crate::effects::Effects;
use crate::errno::Errno;
use crate::identity::parse_worker_id;
use crate::lifecycle::{Lifecycle, LifecycleState};
use crate::models::Models;
use crate::ring::{ByteRing, Overflow};
use crate::tree::Tree;

use super::state::{Content, CtlTarget, Fixed, Gpu, State, Stream, StreamClass, TextSource};
use super::{Hive, HiveError};

pub(super) fn log_ring(spec: &HiveSpec) -> ByteRing {
    ByteRing::new(spec.log_retain_bytes, Overflow::KeepTail, true)
}

pub(super) fn stream(ring: ByteRing, class: StreamClass) -> Content {
    Content::Stream(Stream {
        ring,
        class,
        wraps_logged: 0,
    })
}

/// The fixed tree, its well-known nodes, and the GPU records.
type Built = (Tree<Content>, Fixed, BTreeMap<String, Gpu>);

/// Builds the fixed tree. Names are validated constants or validated spec
/// ids, so failures here are spec errors.
fn build_tree(spec: &HiveSpec, now: u64) -> Result<Built, Errno> {
    let mut t: Tree<Content> = Tree::new(now);
    let root = t.root();
    let proc_ = t.mkdir(root, "proc", now)?;
    t.add(proc_, "boot", Content::Text(TextSource::Boot), now)?;
    let lc = t.mkdir(proc_, "lifecycle", now)?;
    t.add(lc, "state", Content::Text(TextSource::LifecycleState), now)?;
    t.add(
        lc,
        "reason",
        Content::Text(TextSource::LifecycleReason),
        now,
    )?;
    t.add(lc, "since", Content::Text(TextSource::LifecycleSince), now)?;
    let p9 = t.mkdir(proc_, "9p", now)?;
    t.add(p9, "sessions", Content::Text(TextSource::Sessions), now)?;

    let queen = t.mkdir(root, "queen", now)?;
    t.add(queen, "ctl", Content::Ctl(CtlTarget::Queen), now)?;
    let qlc = t.mkdir(queen, "lifecycle", now)?;
    t.add(qlc, "ctl", Content::Ctl(CtlTarget::Lifecycle), now)?;

    let worker_dir = t.mkdir(root, "worker", now)?;
    let log_dir = t.mkdir(root, "log", now)?;
    let queen_log = t.add(
        log_dir,
        "queen.log",
        stream(log_ring(spec), StreamClass::Audit),
        now,
    )?;

    let gpu_dir = t.mkdir(root, "gpu", now)?;
    let mut gpus = BTreeMap::new();
    for g in &spec.gpus {
        let d = t.mkdir(gpu_dir, &g.id, now)?;
        t.add(
            d,
            "info",
            Content::Text(TextSource::GpuInfo(g.id.clone())),
            now,
        )?;
        t.add(d, "ctl", Content::Ctl(CtlTarget::Gpu(g.id.clone())), now)?;
        let lease_file = t.add(d, "lease", stream(log_ring(spec), StreamClass::Lease), now)?;
        t.add(
            d,
            "status",
            Content::Text(TextSource::GpuStatus(g.id.clone())),
            now,
        )?;
        t.add(
            d,
            "job",
            stream(log_ring(spec), StreamClass::Job(g.id.clone())),
            now,
        )?;
        gpus.insert(
            g.id.clone(),
            Gpu {
                spec: g.clone(),
                lease: None,
                reserved_for: None,
                detach_pending: None,
                jobs: 0,
                lease_file,
            },
        );
    }
    let models = t.mkdir(gpu_dir, "models", now)?;
    let avail = t.mkdir(models, "available", now)?;
    for m in &spec.models {
        let d = t.mkdir(avail, &m.id, now)?;
        t.add(
            d,
            "manifest.toml",
            Content::Text(TextSource::Manifest(m.id.clone())),
            now,
        )?;
    }
    t.add(
        models,
        "active",
        stream(log_ring(spec), StreamClass::ModelsActive),
        now,
    )?;
    let tel = t.mkdir(gpu_dir, "telemetry", now)?;
    t.add(
        tel,
        "schema.json",
        Content::Text(TextSource::TelemetrySchema),
        now,
    )?;
    Ok((
        t,
        Fixed {
            worker_dir,
            log_dir,
            queen_log,
        },
        gpus,
    ))
}

/// The worker number in a record the hive wrote about a spawn
/// (`spawning worker-N …`, `spawned worker-N …`, `spawn worker-N failed…`).
fn spawned_id(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    if !matches!(words.next()?, "spawning" | "spawned" | "spawn") {
        return None;
    }
    parse_worker_id(words.next()?)
}

impl Hive {
    /// Builds the hive: validates `spec`, opens (or resumes) the audit
    /// journal in `state_dir`, and starts in BOOTING. Worker numbering
    /// continues after the highest id the journal has seen spawned, so ids
    /// are never reused across restarts either.
    pub fn new(
        spec: HiveSpec,
        state_dir: &Path,
        clock: Arc<dyn Clock>,
        effects: Arc<dyn Effects>,
    ) -> Result<Hive, HiveError> {
        spec.validate()?;
        let now = clock.now_ms();
        let journal = AuditJournal::open_with_clock(state_dir, clock.clone())?;
        let journal_path = journal.path().to_path_buf();
        let mut max_id = 0u64;
        let mut history = log_ring(&spec);
        AuditJournal::replay(&journal_path, |r| {
            if let Some(n) = spawned_id(&r.text) {
                max_id = max_id.max(n);
            }
            let _ = history.append(format!("{}\n", r.text).as_bytes());
        })?;
        let (tree, fixed, gpus) = build_tree(&spec, now)
            .map_err(|e| SpecError(format!("cannot build namespace: {e}")))?;
        let root = tree.root();
        let secrets = spec.secrets.clone();
        let mut st = State {
            tree,
            fixed,
            started_ms: now,
            lifecycle: Lifecycle {
                state: LifecycleState::Booting,
                reason: "starting".into(),
                since_ms: now,
            },
            workers: BTreeMap::new(),
            next_worker: max_id.saturating_add(1),
            gpus,
            models: Models::new(&spec.models),
            default_budget: SpawnBudget::default(),
            journal,
            pending: VecDeque::new(),
            lost: 0,
            journal_error: None,
            boot_lines: VecDeque::new(),
            consoles: HashMap::new(),
            revoked: HashMap::new(),
            revocation_epoch: 0,
            dirty: false,
            now_ms: now,
            spec,
        };
        if let Some(node) = st.tree.get_mut(fixed.queen_log)
            && let Content::Stream(s) = &mut node.content
        {
            s.ring = history;
        }
        let (seq, _) = st.journal.head();
        let name = st.spec.name.clone();
        st.audit(&format!(
            "ninedoor started: hive {name}, journal at record {seq}"
        ));
        Ok(Hive {
            state: Mutex::new(st),
            grew: Condvar::new(),
            clock,
            effects,
            sessions: RwLock::new(None),
            epoch: AtomicU64::new(0),
            root,
            secrets,
            journal_path,
        })
    }
}

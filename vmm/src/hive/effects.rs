//! NineDoor's effects made real: a queen's `spawn` boots a VM process from a
//! hive.toml guest of the same role (the first with `autostart = false`, else
//! the first of that role), `kill` stops it with SIGTERM (its sessions were
//! already revoked by the hive).
//!
//! The spawned worker's budget is the spawn line's, then the queen's default
//! budget, then the template guest's hive.toml `budget`, then the role
//! defaults: field by field, the first that sets one wins.

use std::sync::{Arc, OnceLock, Weak};

use coco_hive_config::{BudgetLimit, GuestBudget, GuestConfig, GuestKind, Role as ConfigRole};
use ninedoor::Hive;
use ninedoor::budget::{SpawnBudget, UNLIMITED};
use ninedoor::effects::{Effects, SpawnSpec};
use ninedoor::identity::Role;
use ninedoor::server::SessionFactory;

use super::bridge::identity_of;
use super::processes::Processes;

/// The role a hive.toml guest has in NineDoor's terms.
pub fn role_of(role: ConfigRole) -> Role {
    match role {
        ConfigRole::Queen => Role::Queen,
        ConfigRole::WorkerHeartbeat => Role::WorkerHeartbeat,
        ConfigRole::WorkerGpu => Role::WorkerGpu,
    }
}

/// A hive.toml `budget` in NineDoor's terms: absent keys stay absent (role
/// default), `"unlimited"` is [`UNLIMITED`].
pub fn budget_of(budget: &GuestBudget) -> SpawnBudget {
    let limit = |l: Option<BudgetLimit>| {
        l.map(|l| match l {
            BudgetLimit::Limited(n) => n,
            BudgetLimit::Unlimited => UNLIMITED,
        })
    };
    SpawnBudget {
        ttl_s: limit(budget.ttl_s),
        ops: limit(budget.ops),
        ticks: limit(budget.ticks),
    }
}

/// What the hive needs once it exists (the effects are created before it).
#[derive(Debug)]
struct Wiring {
    hive: Weak<Hive>,
    factory: Arc<SessionFactory>,
}

/// Effects that start and stop VM processes.
#[derive(Debug)]
pub struct VmEffects {
    templates: Vec<GuestConfig>,
    processes: Arc<Processes>,
    wiring: OnceLock<Wiring>,
}

impl VmEffects {
    /// Effects over `processes`, spawning from `templates` (hive.toml's guests).
    pub fn new(templates: Vec<GuestConfig>, processes: Arc<Processes>) -> Arc<VmEffects> {
        Arc::new(VmEffects {
            templates,
            processes,
            wiring: OnceLock::new(),
        })
    }

    /// Connects the effects to the hive they serve.
    pub fn wire(&self, hive: &Arc<Hive>, factory: Arc<SessionFactory>) {
        let _ = self.wiring.set(Wiring {
            hive: Arc::downgrade(hive),
            factory,
        });
    }

    /// The guest a spawn of `role` boots, renamed to `id`.
    pub fn template_for(&self, role: Role, id: &str, ticks: Option<u64>) -> Option<GuestConfig> {
        let of_role = |g: &&GuestConfig| role_of(g.role) == role;
        let template = self
            .templates
            .iter()
            .filter(of_role)
            .find(|g| !g.autostart)
            .or_else(|| self.templates.iter().find(of_role))?;
        let mut guest = template.clone();
        guest.name = id.to_string();
        if let (Some(ticks), GuestKind::Coconut) = (ticks, guest.kind) {
            guest.cmdline = format!("{} coco.ticks={ticks}", guest.cmdline)
                .trim()
                .to_string();
        }
        Some(guest)
    }
}

impl Effects for VmEffects {
    fn spawn_worker(&self, spec: &SpawnSpec) -> Result<(), String> {
        let wiring = self.wiring.get().ok_or("the supervisor is not ready")?;
        let hive = wiring.hive.upgrade().ok_or("the hive is shutting down")?;
        let guest = self
            .template_for(spec.role, &spec.id, spec.ticks)
            .ok_or_else(|| format!("hive.toml has no {} guest to boot", spec.role))?;
        // Before the VM starts: its session takes the budget at attach.
        hive.fill_spawn_budget(&spec.id, budget_of(&guest.budget))
            .map_err(|e| format!("setting the budget of {}: {e}", spec.id))?;
        self.processes
            .launch(
                &guest,
                identity_of(&spec.id, spec.role),
                &wiring.factory,
                &hive,
            )
            .map(|_| ())
            .map_err(|e| format!("cannot start the VM process: {e}"))
    }

    fn stop_worker(&self, id: &str, _reason: &str) -> Result<(), String> {
        // Gone already (it exited on its own) is as good as stopped.
        self.processes.stop(id);
        Ok(())
    }

    fn detach_gpu(&self, _worker: &str, _gpu: &str) -> Result<(), String> {
        // No GPU partition is attached to a VM process yet (GPU issue).
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_toml_budgets_map_to_spawn_budgets_with_unlimited_as_no_limit() {
        assert_eq!(budget_of(&GuestBudget::default()), SpawnBudget::default());
        let b = GuestBudget {
            ticks: Some(BudgetLimit::Limited(2)),
            ops: None,
            ttl_s: Some(BudgetLimit::Unlimited),
        };
        assert_eq!(
            budget_of(&b),
            SpawnBudget {
                ticks: Some(2),
                ops: None,
                ttl_s: Some(UNLIMITED),
            }
        );
    }
}

//! Run queues and timed waits.
//!
//! Four priorities (0 highest), a FIFO per priority, strict priority
//! between them and round-robin within one — coconutOS's policy. Strict
//! means a lower priority runs only while every higher one is blocked: the
//! manifest author puts CPU-bound shards at a lower priority than the ones
//! that must stay responsive. When nothing is runnable,
//! [`Sched::pick_next`] returns `None` and the kernel idles with `hlt`
//! (never a "deadlock" panic).
//!
//! The running shard is in no queue: the kernel holds it as "current" and
//! puts it back with [`Sched::make_runnable`] when it is preempted or
//! yields (to the back of its queue). Queues are intrusive doubly-linked
//! lists over shard ids (`N` ≤ 255), so every operation is O(1) except
//! the deadline scan, which is O(N) for the small N a kernel has.
//!
//! Timed waits: a blocked shard may have a deadline (monotonic ns);
//! [`Sched::expire`] reports the shards whose deadline passed and
//! [`Sched::next_deadline`] tells the kernel when to program the timer.

/// Number of priorities.
pub const PRIORITIES: usize = 4;
const NIL: u8 = u8::MAX;
const NO_DEADLINE: u64 = u64::MAX;

/// Why a scheduler call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// The shard id is `>= N`.
    BadShard,
    /// The priority is above 3.
    BadPriority,
}

/// Run queues for `N` shard ids.
#[derive(Clone, Copy, Debug)]
pub struct Sched<const N: usize> {
    queued: [bool; N],
    prio: [u8; N],
    next: [u8; N],
    prev: [u8; N],
    head: [u8; PRIORITIES],
    tail: [u8; PRIORITIES],
    deadline: [u64; N],
}

impl<const N: usize> Default for Sched<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sched<N> {
    const FITS: () = assert!(N < NIL as usize, "shard ids must fit in u8");

    /// Empty queues (`const`, for a static).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        Sched {
            queued: [false; N],
            prio: [0; N],
            next: [NIL; N],
            prev: [NIL; N],
            head: [NIL; PRIORITIES],
            tail: [NIL; PRIORITIES],
            deadline: [NO_DEADLINE; N],
        }
    }

    /// Puts `id` at the back of priority `prio`'s queue (if it is queued
    /// already, it is moved there).
    pub fn make_runnable(&mut self, id: usize, prio: u8) -> Result<(), SchedError> {
        if id >= N {
            return Err(SchedError::BadShard);
        }
        if usize::from(prio) >= PRIORITIES {
            return Err(SchedError::BadPriority);
        }
        self.dequeue(id);
        let p = usize::from(prio);
        let me = id as u8;
        let old_tail = self.tail.get(p).copied().unwrap_or(NIL);
        set(&mut self.prev, id, old_tail);
        set(&mut self.next, id, NIL);
        set(&mut self.prio, id, prio);
        set(&mut self.queued, id, true);
        if old_tail == NIL {
            set(&mut self.head, p, me);
        } else {
            set(&mut self.next, usize::from(old_tail), me);
        }
        set(&mut self.tail, p, me);
        Ok(())
    }

    /// Takes `id` off its run queue (it waits for something). Its deadline stays.
    pub fn block(&mut self, id: usize) {
        self.dequeue(id);
    }

    /// Forgets `id` entirely: off its queue and no deadline (it exited).
    pub fn remove(&mut self, id: usize) {
        self.dequeue(id);
        set(&mut self.deadline, id, NO_DEADLINE);
    }

    /// Is `id` on a run queue?
    pub fn is_queued(&self, id: usize) -> bool {
        self.queued.get(id).copied().unwrap_or(false)
    }

    /// The highest priority with a runnable shard.
    pub fn highest_ready(&self) -> Option<u8> {
        self.head.iter().position(|&h| h != NIL).map(|p| p as u8)
    }

    /// Removes and returns the next shard to run: the head of the highest
    /// non-empty priority. `None`: idle.
    pub fn pick_next(&mut self) -> Option<usize> {
        let p = usize::from(self.highest_ready()?);
        let id = usize::from(*self.head.get(p)?);
        self.dequeue(id);
        Some(id)
    }

    /// The running shard `current` yields: it goes to the back of its
    /// queue and the next shard is picked (`current` again if it is alone
    /// at the highest priority).
    pub fn yield_now(&mut self, current: usize, prio: u8) -> Result<usize, SchedError> {
        self.make_runnable(current, prio)?;
        Ok(self.pick_next().unwrap_or(current))
    }

    /// `id` wakes at `ns` unless woken earlier.
    pub fn set_deadline(&mut self, id: usize, ns: u64) {
        set(&mut self.deadline, id, ns);
    }

    /// `id` no longer has a deadline (woken by the event it waited for).
    pub fn clear_deadline(&mut self, id: usize) {
        set(&mut self.deadline, id, NO_DEADLINE);
    }

    /// The earliest deadline, to program the timer.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadline
            .iter()
            .copied()
            .filter(|&d| d != NO_DEADLINE)
            .min()
    }

    /// Calls `expired(id)` for every shard whose deadline is `<= now` and
    /// clears those deadlines (the kernel then completes the wait with
    /// `TimedOut` and makes the shard runnable). Returns how many expired.
    pub fn expire(&mut self, now: u64, mut expired: impl FnMut(usize)) -> usize {
        let mut count = 0usize;
        for (id, d) in self.deadline.iter_mut().enumerate() {
            if *d != NO_DEADLINE && *d <= now {
                *d = NO_DEADLINE;
                expired(id);
                count = count.saturating_add(1);
            }
        }
        count
    }

    fn dequeue(&mut self, id: usize) {
        if !self.is_queued(id) {
            return;
        }
        let p = usize::from(self.prio.get(id).copied().unwrap_or(0));
        let prev = self.prev.get(id).copied().unwrap_or(NIL);
        let next = self.next.get(id).copied().unwrap_or(NIL);
        if prev == NIL {
            set(&mut self.head, p, next);
        } else {
            set(&mut self.next, usize::from(prev), next);
        }
        if next == NIL {
            set(&mut self.tail, p, prev);
        } else {
            set(&mut self.prev, usize::from(next), prev);
        }
        set(&mut self.prev, id, NIL);
        set(&mut self.next, id, NIL);
        set(&mut self.queued, id, false);
    }
}

/// `array[i] = v` when `i` is in range.
fn set<T: Copy>(array: &mut [T], i: usize, v: T) {
    if let Some(slot) = array.get_mut(i) {
        *slot = v;
    }
}

#[cfg(test)]
mod tests;

//! The node table and directory structure, with stable listing cookies.
//!
//! Why an arena keyed by never-reused ids: handles (fids) held by clients
//! stay meaningful, or cleanly dead (`ENOENT`), when nodes go away. Each
//! directory hands out cookies from its own creation sequence, so an entry
//! keeps its cookie for its whole life and a listing split over several
//! `Treaddir` calls returns every surviving entry exactly once, whatever is
//! added or removed in between (new entries appear at the end). Cookies 1
//! and 2 are the synthetic `.` and `..`.
//!
//! A directory entry is either the node's canonical entry (where it was
//! created; it defines the node's canonical path, which policy uses) or an
//! alias made by `bind`/`mount`. Aliases may not create cycles, and vanish
//! with their target.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::errno::Errno;
use crate::node::{FIRST_ENTRY_COOKIE, NodeId};

/// Longest name a node may have.
pub const MAX_NAME: usize = 255;

/// Whether `name` can be a path component.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    check_name(name).is_ok()
}

/// Checks a path component: not empty, not `.`/`..`, no `/` or NUL, at
/// most 255 bytes.
pub fn check_name(name: &str) -> Result<(), Errno> {
    if name.len() > MAX_NAME {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// A directory entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub target: NodeId,
    pub alias: bool,
}

/// Directory contents.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dir {
    pub entries: BTreeMap<u64, Entry>,
    by_name: HashMap<String, u64>,
    next_cookie: u64,
}

impl Dir {
    fn insert(&mut self, name: &str, target: NodeId, alias: bool) -> Result<u64, Errno> {
        if self.by_name.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let cookie = self.next_cookie.max(FIRST_ENTRY_COOKIE);
        self.next_cookie = cookie + 1;
        self.by_name.insert(name.to_owned(), cookie);
        self.entries.insert(
            cookie,
            Entry {
                name: name.to_owned(),
                target,
                alias,
            },
        );
        Ok(cookie)
    }

    fn remove_where(&mut self, mut pred: impl FnMut(&Entry) -> bool) {
        let gone: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(c, _)| *c)
            .collect();
        for c in gone {
            if let Some(e) = self.entries.remove(&c) {
                self.by_name.remove(&e.name);
            }
        }
    }

    pub fn lookup(&self, name: &str) -> Option<NodeId> {
        let c = self.by_name.get(name)?;
        self.entries.get(c).map(|e| e.target)
    }
}

/// A node: where it lives canonically and what it holds.
#[derive(Debug)]
pub(crate) struct Node<C> {
    pub parent: NodeId,
    pub path: String,
    pub content: C,
    pub mtime_ms: u64,
}

/// Contents that may be directories.
pub(crate) trait MaybeDir {
    fn dir(&self) -> Option<&Dir>;
    fn dir_mut(&mut self) -> Option<&mut Dir>;
    fn new_dir() -> Self;
}

/// The arena.
#[derive(Debug)]
pub(crate) struct Tree<C> {
    nodes: HashMap<u64, Node<C>>,
    next_id: u64,
}

const ROOT: NodeId = NodeId(1);

impl<C: MaybeDir> Tree<C> {
    pub fn new(now_ms: u64) -> Tree<C> {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT.0,
            Node {
                parent: ROOT,
                path: "/".into(),
                content: C::new_dir(),
                mtime_ms: now_ms,
            },
        );
        Tree { nodes, next_id: 2 }
    }

    pub fn root(&self) -> NodeId {
        ROOT
    }

    pub fn get(&self, id: NodeId) -> Option<&Node<C>> {
        self.nodes.get(&id.0)
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node<C>> {
        self.nodes.get_mut(&id.0)
    }

    pub fn dir(&self, id: NodeId) -> Result<&Dir, Errno> {
        self.get(id)
            .ok_or(Errno::ENOENT)?
            .content
            .dir()
            .ok_or(Errno::ENOTDIR)
    }

    /// Creates a node under `parent` (canonical entry).
    pub fn add(
        &mut self,
        parent: NodeId,
        name: &str,
        content: C,
        now_ms: u64,
    ) -> Result<NodeId, Errno> {
        check_name(name)?;
        let parent_path = self.get(parent).ok_or(Errno::ENOENT)?.path.clone();
        let id = NodeId(self.next_id);
        let dir = self
            .get_mut(parent)
            .ok_or(Errno::ENOENT)?
            .content
            .dir_mut()
            .ok_or(Errno::ENOTDIR)?;
        dir.insert(name, id, false)?;
        self.next_id += 1;
        let path = if parent_path == "/" {
            format!("/{name}")
        } else {
            format!("{parent_path}/{name}")
        };
        self.nodes.insert(
            id.0,
            Node {
                parent,
                path,
                content,
                mtime_ms: now_ms,
            },
        );
        Ok(id)
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, parent: NodeId, name: &str, now_ms: u64) -> Result<NodeId, Errno> {
        self.add(parent, name, C::new_dir(), now_ms)
    }

    /// Looks `name` up in directory `dir`.
    pub fn lookup(&self, dir: NodeId, name: &str) -> Result<Option<NodeId>, Errno> {
        Ok(self.dir(dir)?.lookup(name))
    }

    /// Resolves an absolute path (no policy).
    pub fn resolve(&self, path: &str) -> Result<NodeId, Errno> {
        let mut cur = ROOT;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            cur = self.lookup(cur, c)?.ok_or(Errno::ENOENT)?;
        }
        Ok(cur)
    }

    /// Adds an alias entry `name` in `dir` naming `target`. Refuses (ELOOP)
    /// when `dir` is reachable from `target`, which would make walks and
    /// recursive listings endless.
    pub fn alias(&mut self, dir: NodeId, name: &str, target: NodeId) -> Result<(), Errno> {
        check_name(name)?;
        self.get(target).ok_or(Errno::ENOENT)?;
        if self.dir(dir)?.lookup(name).is_some() {
            return Err(Errno::EEXIST);
        }
        if self.reachable(target, dir) {
            return Err(Errno::ELOOP);
        }
        self.get_mut(dir)
            .ok_or(Errno::ENOENT)?
            .content
            .dir_mut()
            .ok_or(Errno::ENOTDIR)?
            .insert(name, target, true)?;
        Ok(())
    }

    /// Whether `to` can be reached from `from` through entries (canonical
    /// and alias).
    fn reachable(&self, from: NodeId, to: NodeId) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if !seen.insert(n) {
                continue;
            }
            if let Ok(d) = self.dir(n) {
                stack.extend(d.entries.values().map(|e| e.target));
            }
        }
        false
    }

    /// Removes `id` and its canonical subtree, and every alias naming a
    /// removed node. Returns the removed ids.
    pub fn remove(&mut self, id: NodeId) -> Vec<NodeId> {
        if id == ROOT || self.get(id).is_none() {
            return Vec::new();
        }
        let mut removed = Vec::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if let Some(node) = self.nodes.remove(&n.0) {
                if let Some(d) = node.content.dir() {
                    stack.extend(d.entries.values().filter(|e| !e.alias).map(|e| e.target));
                }
                removed.push(n);
            }
        }
        let gone: HashSet<NodeId> = removed.iter().copied().collect();
        for node in self.nodes.values_mut() {
            if let Some(d) = node.content.dir_mut() {
                d.remove_where(|e| gone.contains(&e.target));
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum C {
        D(Dir),
        F,
    }

    impl MaybeDir for C {
        fn dir(&self) -> Option<&Dir> {
            match self {
                C::D(d) => Some(d),
                C::F => None,
            }
        }
        fn dir_mut(&mut self) -> Option<&mut Dir> {
            match self {
                C::D(d) => Some(d),
                C::F => None,
            }
        }
        fn new_dir() -> Self {
            C::D(Dir::default())
        }
    }

    fn cookies(t: &Tree<C>, d: NodeId) -> Vec<(u64, String)> {
        t.dir(d)
            .unwrap()
            .entries
            .iter()
            .map(|(c, e)| (*c, e.name.clone()))
            .collect()
    }

    #[test]
    fn cookies_are_stable_across_inserts_and_removals() {
        let mut t: Tree<C> = Tree::new(0);
        let r = t.root();
        let a = t.add(r, "a", C::F, 0).unwrap();
        let b = t.mkdir(r, "b", 0).unwrap();
        t.add(b, "x", C::F, 0).unwrap();
        let c = t.add(r, "c", C::F, 0).unwrap();
        assert_eq!(
            cookies(&t, r),
            [(3, "a".into()), (4, "b".into()), (5, "c".into())]
        );
        t.remove(a);
        t.add(r, "a", C::F, 0).unwrap();
        assert_eq!(
            cookies(&t, r),
            [(4, "b".into()), (5, "c".into()), (6, "a".into())]
        );
        assert_eq!(t.add(r, "c", C::F, 0), Err(Errno::EEXIST));
        assert_eq!(t.get(c).unwrap().path, "/c");
        assert_eq!(
            t.resolve("/b/x").map(|n| t.get(n).unwrap().path.clone()),
            Ok("/b/x".into())
        );
    }

    #[test]
    fn aliases_refuse_cycles_and_vanish_with_targets() {
        let mut t: Tree<C> = Tree::new(0);
        let r = t.root();
        let a = t.mkdir(r, "a", 0).unwrap();
        let b = t.mkdir(r, "b", 0).unwrap();
        let f = t.add(b, "f", C::F, 0).unwrap();
        t.alias(a, "to-b", b).unwrap();
        assert_eq!(t.resolve("/a/to-b/f"), Ok(f));
        // b → a would close a loop through a's alias to b.
        assert_eq!(t.alias(b, "to-a", a), Err(Errno::ELOOP));
        assert_eq!(t.alias(a, "self", a), Err(Errno::ELOOP));
        assert_eq!(t.alias(r, "root", r), Err(Errno::ELOOP));
        t.alias(r, "f2", f).unwrap();
        let removed = t.remove(b);
        assert_eq!(removed.len(), 2);
        assert_eq!(t.resolve("/a/to-b"), Err(Errno::ENOENT));
        assert_eq!(t.resolve("/f2"), Err(Errno::ENOENT));
        assert!(t.get(f).is_none());
    }

    #[test]
    fn names() {
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert_eq!(check_name(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(check_name(&"x".repeat(256)), Err(Errno::ENAMETOOLONG));
        assert!(check_name(&"x".repeat(255)).is_ok());
    }
}

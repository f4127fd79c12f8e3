//! The typed errors of the tier library.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while preparing or running the tier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A host tool could not be started.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The program.
        tool: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A host tool ran but failed.
    #[error("{tool} failed ({status}): {output}")]
    ToolFailed {
        /// The command line, for the message.
        tool: String,
        /// Its exit status.
        status: String,
        /// The tail of what it printed.
        output: String,
    },
    /// A step took longer than its time limit and was killed.
    #[error("{step} timed out after {limit:?}")]
    Timeout {
        /// The step.
        step: String,
        /// Its limit.
        limit: Duration,
    },
    /// A Debian package the tier needs is not known to apt.
    #[error(
        "no installable package for {0} (is `apt-get update` done and the bookworm archive reachable?)"
    )]
    NoPackage(String),
    /// A required program is not installed on this host.
    #[error("{0} is not installed on this host")]
    MissingTool(String),
    /// An unpacked package lacks a file the tier needs.
    #[error("unpacked package lacks {what} under {}", dir.display())]
    MissingFile {
        /// What was looked for.
        what: String,
        /// Where.
        dir: PathBuf,
    },
    /// A kernel module file is not a well-formed ELF object.
    #[error("kernel module {}: {reason}", path.display())]
    BadModule {
        /// The module file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A module (or one of its dependencies) is neither built in nor shipped.
    #[error("kernel module {0} is neither built in nor present in the package")]
    UnknownModule(String),
    /// A test name or argument the init script cannot carry.
    #[error("invalid inner test {name:?}: {reason}")]
    BadTest {
        /// The test.
        name: String,
        /// Why.
        reason: String,
    },
    /// L1 never became ready to run tests.
    #[error("L1 did not get ready: {reason}\n--- console tail ---\n{tail}")]
    L1NotReady {
        /// Why.
        reason: String,
        /// The last console lines.
        tail: String,
    },
    /// A named tenant does not exist.
    #[error("no inner test named {0:?} (see `coco-nested list`)")]
    UnknownTest(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

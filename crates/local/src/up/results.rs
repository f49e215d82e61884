//! Result objects of `energy up` (S3's part in AWS): files under `<data-dir>/results/<key>`,
//! the bucket's keys.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use energy_core::ports::{PortError, ResultStore};

/// Result objects as files: `<data-dir>/results/<key>`, the S3 bucket's keys. On Linux an object
/// is written to a file without a name in its key's folder and linked at its key (see
/// `unnamed::write`). Where that cannot be done (another system, a file system without unnamed
/// files, an object already at the key) it is written to a temporary file beside it (a name no
/// key can have: see [`is_temporary`]) and renamed over its key. Either way a crash never leaves
/// a partial object, and the rename stays within one directory (a rename across directories
/// takes the file system's one rename lock, which every writer then waited on).
pub struct FileResults {
    pub dir: PathBuf,
}

/// Numbers the temporary files of this process: with the process id, a name no other write
/// can hold (a clock, however fine, gives two writes the same instant).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether a file name is a temporary one: a dot, the process id, a dash, a number and `.tmp`.
/// No object has such a name: every key ends in `.json`.
pub fn is_temporary(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .and_then(|n| n.split_once('-'))
        .is_some_and(|(pid, n)| {
            !pid.is_empty()
                && !n.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && n.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Deletes the temporary files a killed process left under `dir`; answers how many.
pub fn remove_temporaries(dir: &std::path::Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            removed += remove_temporaries(&entry.path())?;
        } else if kind.is_file() && entry.file_name().to_str().is_some_and(is_temporary) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl FileResults {
    /// A fresh name for an object being written in `parent`, unique by construction.
    fn temp_path(&self, parent: &std::path::Path) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        parent.join(format!(".{}-{n}.tmp", std::process::id()))
    }
}

impl FileResults {
    /// Writes the object whole or not at all: where it can, a file without a name that is then
    /// linked at its key ([`unnamed::write`]); otherwise a temporary file, then a rename.
    fn write(&self, key: &str, body: &[u8]) -> Result<(), PortError> {
        if key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(PortError::permanent(
                "results",
                format!("unsafe key {key:?}"),
            ));
        }
        // The bucket's keys start with `results/`; the data dir's folder is that prefix.
        let relative = key.strip_prefix("results/").unwrap_or(key);
        let path = self.dir.join(relative);
        let io = |e: std::io::Error| PortError::transient("results", format!("{key}: {e}"));
        let parent = path.parent().unwrap_or(&self.dir);
        #[cfg(target_os = "linux")]
        if unnamed::write(parent, &path, body).map_err(io)? {
            return Ok(());
        }
        // Most writes go to a folder that exists: only a failed create makes the folders.
        let tmp = self.temp_path(parent);
        let open = |tmp: &PathBuf| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tmp)
        };
        // create_new: should a name ever be taken (a file left by a killed process with the
        // same pid), fail rather than write into it.
        let mut file = match open(&tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(parent).map_err(io)?;
                open(&tmp).map_err(io)?
            }
            other => other.map_err(io)?,
        };
        file.write_all(body).map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }
}

/// Objects written as files without a name (`O_TMPFILE`), then linked at their key.
#[cfg(target_os = "linux")]
mod unnamed {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;

    /// Writes `body` into a new file of `parent` that has no name yet, then links it at `path`:
    /// the folder changes once, where a temporary file changed it three times (the temporary's
    /// entry made, then renamed over the key), and a crash leaves neither a partial object nor
    /// a temporary file (the unnamed file goes with the process). On this disk the temporary's
    /// create and rename were a fifth of `energy up`'s CPU while it stored results.
    ///
    /// Answers `false`, having written nothing under `path`, where this cannot be done: a file
    /// system without unnamed files, an object already at `path` (a link never replaces a
    /// file; a rename does), or a link that fails for any reason (no `/proc`, a sandbox that
    /// refuses `linkat`): the caller then writes through a temporary file, which reports its
    /// own errors.
    pub fn write(parent: &Path, path: &Path, body: &[u8]) -> std::io::Result<bool> {
        write_linking(parent, path, body, |file, path| {
            // Linking by the descriptor itself (AT_EMPTY_PATH) needs a privilege; through
            // `/proc` it does not.
            let this = format!("/proc/self/fd/{}", file.as_raw_fd());
            rustix::fs::linkat(CWD, this.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW)
        })
    }

    /// [`write`], linking with `link`.
    pub(super) fn write_linking(
        parent: &Path,
        path: &Path,
        body: &[u8],
        link: impl FnOnce(&std::fs::File, &Path) -> rustix::io::Result<()>,
    ) -> std::io::Result<bool> {
        // Written again (a retried store, an amended order): straight to the rename, rather
        // than writing the body twice.
        if std::fs::symlink_metadata(path).is_ok() {
            return Ok(false);
        }
        let open = || {
            rustix::fs::open(
                parent,
                OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            )
        };
        let fd = match open() {
            Err(Errno::NOENT) => {
                std::fs::create_dir_all(parent)?;
                open()
            }
            other => other,
        };
        // No unnamed file (a file system without them, EISDIR from kernels before them, or
        // any other refusal): the temporary file's path reports what it finds.
        let Ok(fd) = fd else { return Ok(false) };
        let mut file = std::fs::File::from(fd);
        file.write_all(body)?;
        // Found by a hostile review: failing the write on an unlisted error (EXDEV, ENOSYS
        // from a sandbox) failed every result where a temporary file would have worked.
        Ok(link(&file, path).is_ok())
    }
}

/// A write for the [`writers`].
type Job = Box<dyn FnOnce() + Send>;

/// How many threads write result objects.
const WRITERS: usize = 2;

/// The threads that write result objects, shared by every store of the process and started by
/// the first write; `None` if none could be started. Handed to tokio's blocking pool, each write
/// woke a thread of its own and put it back to sleep: a twentieth of the stack's CPU while it
/// stored results. These threads take the next write as they finish one. Two, so that a slow
/// create in one folder (ext4 makes them under the folder's lock) does not hold up the others.
fn writers() -> Option<&'static std::sync::mpsc::Sender<Job>> {
    static WRITERS_QUEUE: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    WRITERS_QUEUE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
            let mut started = 0;
            for n in 0..WRITERS {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("energy-results-{n}"))
                    .spawn(move || {
                        loop {
                            let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                            match job {
                                // A write that panics answers nothing (its caller sees a
                                // lost write) and leaves the thread for the next.
                                Ok(job) => {
                                    let _ =
                                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                                }
                                Err(_) => break,
                            }
                        }
                    });
                started += usize::from(spawned.is_ok());
            }
            (started > 0).then_some(tx)
        })
        .as_ref()
}

#[async_trait]
impl ResultStore for FileResults {
    /// On a writer thread (see [`writers`]), or tokio's blocking pool if there is none: file
    /// writes never stall an async worker.
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), PortError> {
        let this = FileResults {
            dir: self.dir.clone(),
        };
        let (owned, body) = (key.to_string(), body.to_vec());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(this.write(&owned, &body));
        });
        let queued = match writers() {
            Some(queue) => queue.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = queued {
            tokio::task::spawn_blocking(job);
        }
        rx.await.map_err(|_| {
            PortError::transient("results", format!("{key}: the write was lost (a panic)"))
        })?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jiff::Timestamp;

    use super::*;

    /// A fresh folder for one test's objects.
    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "energy-results-{name}-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ))
    }

    /// Temporary names are unique by construction, however fast or coarse the clock.
    #[test]
    fn temporary_names_never_repeat() {
        let store = Arc::new(FileResults {
            dir: PathBuf::from("/nonexistent/results"),
        });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..50_000)
                        .map(|_| store.temp_path(&store.dir))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        let mut repeats = 0;
        for t in threads {
            for name in t.join().unwrap() {
                if !all.insert(name) {
                    repeats += 1;
                }
            }
        }
        assert_eq!(repeats, 0, "temporary names repeated");
    }

    /// Many writers at once, each object under its own key with its own bytes: every object
    /// holds exactly what was written under its key (a shared temporary name once renamed one
    /// order's result onto another's key).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_result_writes_each_keep_their_own_bytes() {
        let dir = temp_dir("concurrent");
        let store = Arc::new(FileResults {
            dir: dir.join("results"),
        });
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..1_500 {
                    let key = format!("results/2026-11-28/NL/w{writer}-{i:05}.json");
                    let body = format!("{{\"writer\":{writer},\"i\":{i}}}");
                    store.put(&key, body.as_bytes()).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut wrong = Vec::new();
        for writer in 0..8 {
            for i in 0..1_500 {
                let path = dir.join(format!("results/2026-11-28/NL/w{writer}-{i:05}.json"));
                let body = std::fs::read_to_string(&path).unwrap_or_default();
                if body != format!("{{\"writer\":{writer},\"i\":{i}}}") {
                    wrong.push(format!("{}: {body:?}", path.display()));
                }
            }
        }
        let leftovers = remove_temporaries(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            wrong.is_empty(),
            "{} objects hold other bytes: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        assert_eq!(leftovers, 0, "temporary files left behind");
    }

    /// An object put again under its key holds the last bytes put, whole: one writer after
    /// another, and many at once (a link never replaces a file, so those writes go through a
    /// temporary and a rename).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_object_put_again_holds_the_last_bytes_whole() {
        let dir = temp_dir("again");
        let store = Arc::new(FileResults {
            dir: dir.join("results"),
        });
        let path = dir.join("results/2026-11-28/NL/o-1.json");
        store
            .put("results/2026-11-28/NL/o-1.json", b"{\"first\":1}")
            .await
            .unwrap();
        store
            .put("results/2026-11-28/NL/o-1.json", b"{\"second\":22}")
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"second\":22}");
        let bodies: Vec<String> = (0..8)
            .map(|w| format!("{{\"writer\":{w},\"pad\":\"{}\"}}", "x".repeat(w * 500)))
            .collect();
        let mut tasks = Vec::new();
        for body in bodies.clone() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..200 {
                    store
                        .put("results/2026-11-28/NL/o-1.json", body.as_bytes())
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let last = std::fs::read_to_string(&path).unwrap();
        let leftovers = remove_temporaries(&dir).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            bodies.contains(&last),
            "a mixed or partial object: {last:?}"
        );
        assert_eq!(leftovers, 0, "temporary files left behind");
        assert_eq!(names, ["o-1.json"], "the folder holds the object only");
    }

    /// Found by a hostile review: a link refused with an error the code did not expect (EXDEV,
    /// or ENOSYS from a sandbox) failed the write, every write, where a temporary file and a
    /// rename would have stored the object.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_refused_link_leaves_nothing_and_the_object_is_stored_another_way() {
        use rustix::io::Errno;
        let dir = temp_dir("refused");
        let folder = dir.join("results/2026-11-28/NL");
        let path = folder.join("o-1.json");
        for refusal in [Errno::XDEV, Errno::NOSYS, Errno::OPNOTSUPP, Errno::IO] {
            let linked = unnamed::write_linking(&folder, &path, b"{}", |_, _| Err(refusal));
            assert!(
                matches!(linked, Ok(false)),
                "{refusal:?}: {linked:?}, where the caller should go on another way"
            );
            assert!(!path.exists(), "{refusal:?}: nothing under the key");
        }
        let store = FileResults {
            dir: dir.join("results"),
        };
        store
            .put("results/2026-11-28/NL/o-1.json", b"{\"ok\":1}")
            .await
            .unwrap();
        let names: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let body = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(names, ["o-1.json"]);
        assert_eq!(body, "{\"ok\":1}");
    }

    #[test]
    fn temporary_names_are_told_from_keys() {
        let store = FileResults {
            dir: PathBuf::from("/r"),
        };
        let name = store.temp_path(&store.dir);
        assert!(is_temporary(name.file_name().unwrap().to_str().unwrap()));
        for key_part in [
            "o-1.json", ".json", "..tmp", ".1-.tmp", ".-1.tmp", ".a-1.tmp", "1-2.tmp",
        ] {
            assert!(!is_temporary(key_part), "{key_part}");
        }
    }
}

//! argon2id password hashing. Hashing costs tens of milliseconds of CPU and
//! 19 MiB of memory, so it runs on threads of its own, never on the async
//! workers, and at most one hash per core (four at most) runs at a time:
//! more would add 19 MiB each and little throughput, as logins are rare
//! next to other requests. Without that
//! bound a few hundred concurrent signups or logins would each hold a
//! blocking thread and its 19 MiB (the pool grows to 512 threads, about
//! 10 GiB). Requests beyond the bound wait in a short queue; when the queue
//! is full, or a request has waited too long, it is refused with
//! [`PasswordError::Busy`] (429 with `Retry-After`) instead of piling up.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing slot is taken and the queue is full or too slow.
    #[error("too many passwords are being checked at once; try again shortly")]
    Busy,
    /// Hashing itself failed (a bug, never the input).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Waiting requests allowed per hashing slot.
const QUEUE_PER_SLOT: usize = 32;
/// The longest a request waits for a hashing slot.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Slots {
    semaphore: Semaphore,
    waiting: AtomicUsize,
    queue_bound: usize,
    /// Hashes run on this many long-lived threads of their own, not on
    /// tokio's blocking pool: the allocator keeps a freed 19 MiB block in
    /// the arena of the thread that used it, and the blocking pool hands
    /// successive hashes to ever new threads, so memory would grow with
    /// the number of threads ever used rather than with the slots.
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2).clamp(1, 4);
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..cores {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new().name(format!("password-hash-{index}")).spawn(move || {
                loop {
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Slots {
            semaphore: Semaphore::new(cores),
            waiting: AtomicUsize::new(0),
            queue_bound: cores * QUEUE_PER_SLOT,
            jobs: std::sync::Mutex::new(sender),
        }
    })
}

/// Takes a hashing slot, waiting in the bounded queue if need be.
async fn slot() -> Result<SemaphorePermit<'static>, PasswordError> {
    let slots = slots();
    if let Ok(permit) = slots.semaphore.try_acquire() {
        return Ok(permit);
    }
    if slots.waiting.fetch_add(1, Ordering::SeqCst) >= slots.queue_bound {
        slots.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(PasswordError::Busy);
    }
    let permit = tokio::time::timeout(QUEUE_WAIT, slots.semaphore.acquire()).await;
    slots.waiting.fetch_sub(1, Ordering::SeqCst);
    match permit {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) | Err(_) => Err(PasswordError::Busy),
    }
}

/// Runs `work` on a hashing thread while holding a hashing slot. The slot
/// moves into the job, so it is released when the hash is done even if the
/// request was dropped meanwhile.
async fn run_bounded<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, PasswordError> {
    let permit = slot().await?;
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _permit = permit;
        let _ = done.send(work());
    });
    let sent = slots().jobs.lock().map_err(|_| anyhow::anyhow!("the hashing queue is poisoned"))?.send(job);
    sent.map_err(|_| anyhow::anyhow!("no password hashing thread is running"))?;
    let result = result.await.map_err(|_| anyhow::anyhow!("a password hashing thread stopped"))?;
    Ok(result?)
}

/// Hashes a password into a PHC string (argon2id, default parameters).
pub async fn hash(password: String) -> Result<String, PasswordError> {
    run_bounded(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await
}

/// Checks a password against a PHC string. With no stored hash (unknown
/// user) it still spends the same work on a fixed hash, so response time does
/// not reveal which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    run_bounded(move || {
        let stored = stored.unwrap_or_else(|| DECOY_HASH.to_owned());
        let matches = Argon2::default().verify_password(password.as_bytes(), stored.as_str()).is_ok();
        Ok(matches && stored != DECOY_HASH)
    })
    .await
}

/// A real argon2id hash of a random string nobody knows.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$YzW3Cpbtnzy/3yaAXyMyo8pYk8jTmE40BGWvPo6dpXY";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}

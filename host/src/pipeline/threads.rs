//! The pipeline's own threads.
//!
//! Applying events (rule calls, Kustomer writes, the store's records) runs on
//! an async runtime of its own, apart from the HTTP server's, on threads with
//! a lower scheduling priority (a higher `nice`): when both have work, the
//! kernel gives the CPU to the intake first, so a 2xx waits for its own write
//! and not behind a queue of events being applied; the pipeline takes what
//! is left. Events wait durably in the inbox meanwhile (OP2).

use super::PipelineConfig;
use tokio::runtime::{Handle, Runtime};

/// The pipeline's runtime; stopped without waiting when dropped (what it was
/// running stays pending in the inbox).
pub struct Workers {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Workers {
    /// Starts `config.threads` async worker threads (their blocking threads,
    /// where rule calls run, are made as needed), each lowered to
    /// `config.nice`.
    pub fn start(config: &PipelineConfig) -> std::io::Result<Self> {
        let nice = config.nice;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("pipeline")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Where the pipeline's tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime waits for its blocking threads, which is
            // not allowed inside another runtime; the tasks left are only
            // ever ones the shutdown grace gave up on.
            runtime.shutdown_background();
        }
    }
}

/// Raises the calling thread's `nice` to `nice` (Linux schedules threads
/// one by one). Lowering a priority needs no privilege; where it fails the
/// thread keeps the process's priority.
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(thread), i32::from(nice)) {
            tracing::warn!(%error, nice, "a pipeline thread keeps the process's priority");
        }
    }
}

/// The calling thread's `nice`, where the platform tells it.
#[cfg(all(test, target_os = "linux"))]
fn priority() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(i32::MIN)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The `nice` of a worker thread and of a blocking thread of pipeline
    /// threads started with `threads` and `nice`.
    fn seen_with(threads: usize, nice: u8) -> (i32, i32) {
        let config = PipelineConfig {
            threads,
            nice,
            ..PipelineConfig::default()
        };
        let workers = Workers::start(&config).expect("a runtime");
        let handle = workers.handle().clone();
        std::thread::spawn(move || {
            handle.block_on(async {
                let worker = tokio::spawn(async { priority() }).await.expect("worker");
                let blocking = tokio::task::spawn_blocking(priority)
                    .await
                    .expect("blocking");
                (worker, blocking)
            })
        })
        .join()
        .expect("joined")
    }

    #[test]
    fn pf4_pipeline_threads_run_below_the_process_priority() {
        let base = priority();
        let (worker, blocking) = seen_with(2, 7);
        assert_eq!(worker, (base + 7).min(19));
        assert_eq!(blocking, (base + 7).min(19));
        // The calling thread is left alone.
        assert_eq!(priority(), base);
    }

    #[test]
    fn pf4_nice_zero_leaves_the_threads_alone() {
        let base = priority();
        let (worker, _) = seen_with(1, 0);
        assert_eq!(worker, base);
    }
}

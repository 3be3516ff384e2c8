//! One thread fills every cache miss: it reads the stored document, renders the page (or the
//! transcript, or OpenCode's item list) and compresses it.
//!
//! Syntax highlighting compiles each grammar's regular expressions on first use and keeps
//! per-thread matching state; rendering on every worker would grow that state once per worker,
//! and each fill of a large session holds its document, its parsed form and its page at once.
//! Fills are cache misses, rare next to views, so one thread keeps memory bounded (one fill at a
//! time, and the first request need not wait for the syntax set to load) at the cost of queueing
//! concurrent misses. How many requests may wait for it is bounded by the caller
//! (`views::fill`), so the queue is too.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

pub struct Renderer {
    jobs: Mutex<Sender<Job>>,
}

impl Renderer {
    /// Start the render thread; it also loads the syntax set, beside the first requests.
    pub fn start() -> Result<Self> {
        let (jobs, queue) = channel::<Job>();
        std::thread::Builder::new()
            .name("render".into())
            .spawn(move || {
                crate::render::warm_up();
                for job in queue {
                    job();
                }
            })
            .map_err(|e| Error::Config(format!("cannot start the render thread: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(jobs),
        })
    }

    /// Run `work` on the render thread and wait for its result. A panic in it is an error for
    /// this request; the thread goes on.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = channel();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(Error::internal(format!("rendering panicked: {what}")))
            });
            let _ = reply.send(result);
        });
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
            .map_err(|_| Error::internal("the render thread has stopped"))?;
        answer
            .recv()
            .map_err(|_| Error::internal("the render thread has stopped"))?
    }

    /// Render a page on the render thread.
    pub fn render_page(&self, doc: crate::model::ShareData, share_url: String) -> Result<String> {
        self.run(move || {
            Ok(crate::render::render_page(
                &doc,
                &crate::render::PageContext {
                    share_url: &share_url,
                },
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ShareData;

    #[test]
    fn renders_on_its_thread_and_survives_bad_input() {
        let renderer = Renderer::start().unwrap();
        let doc: ShareData = serde_json::from_slice(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/opencode-1.18.33-short.sharedata.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let r = renderer.run(|| -> Result<()> { panic!("boom") });
        assert!(matches!(r, Err(Error::Internal(_))));
        let html = renderer
            .render_page(doc.clone(), "http://x/share/abcdefgh".into())
            .unwrap();
        assert!(html.contains("List comprehension vs map"));
        // Many callers at once all get their page.
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (renderer, doc) = (&renderer, doc.clone());
                s.spawn(move || {
                    assert!(
                        renderer
                            .render_page(doc, "http://x/share/abcdefgh".into())
                            .unwrap()
                            .contains("List comprehension")
                    );
                });
            }
        });
    }
}

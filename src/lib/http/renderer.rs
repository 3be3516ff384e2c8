//! One thread renders every share page.
//!
//! Syntax highlighting compiles each grammar's regular expressions on first use and keeps
//! per-thread matching state; rendering on every worker would grow that state once per worker.
//! Page renders are cache misses, rare next to views, so one render thread keeps memory bounded
//! (and the first request need not wait for the syntax set to load) at the cost of queueing
//! concurrent misses.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use crate::error::{Error, Result};
use crate::model::ShareData;
use crate::render::{self, PageContext};

struct Job {
    doc: ShareData,
    share_url: String,
    reply: Sender<Result<String, String>>,
}

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
                render::warm_up();
                for job in queue {
                    let html = catch_unwind(AssertUnwindSafe(|| {
                        render::render_page(
                            &job.doc,
                            &PageContext {
                                share_url: &job.share_url,
                            },
                        )
                    }))
                    .map_err(|panic| {
                        panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default()
                    });
                    let _ = job.reply.send(html);
                }
            })
            .map_err(|e| Error::Config(format!("cannot start the render thread: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(jobs),
        })
    }

    /// Render a page on the render thread and wait for it.
    pub fn render_page(&self, doc: ShareData, share_url: String) -> Result<String> {
        let (reply, answer) = channel();
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(Job {
                doc,
                share_url,
                reply,
            })
            .map_err(|_| Error::internal("the render thread has stopped"))?;
        answer
            .recv()
            .map_err(|_| Error::internal("the render thread has stopped"))?
            .map_err(|panic| Error::internal(format!("rendering panicked: {panic}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

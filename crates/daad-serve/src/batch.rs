//! Dynamic batching: request handlers send single images into a bounded tokio channel; one
//! blocking worker thread owns the [`Scorer`], takes the first waiting image, keeps collecting
//! for up to `max_wait` or until `max_batch` images, and scores them in one call. It waits only
//! while requests are on their way (accepted, still reading or decoding): a lone request is
//! scored at once, and under load the model sees full batches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::DynamicImage;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::scorer::{ImageScore, ScoreError, Scorer};

/// What one image went through in the worker.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchTiming {
    /// Seconds between entering the queue and its batch starting.
    pub queue_s: f64,
    /// Seconds the batch spent in the model.
    pub model_s: f64,
    /// Images in the batch.
    pub batch_size: usize,
}

/// The result of one image.
pub(crate) type JobResult = Result<(ImageScore, BatchTiming), Arc<ScoreError>>;

/// One image waiting to be scored.
pub(crate) struct Job {
    pub image: DynamicImage,
    pub detail: bool,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<JobResult>,
}

/// The sending side; dropping every clone stops the worker after the queue drains.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
    coming: Arc<AtomicUsize>,
}

/// Marks one request as on its way to the queue while it lives.
pub(crate) struct Coming(Arc<AtomicUsize>);

impl Drop for Coming {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why an image could not be queued.
#[derive(Debug)]
pub(crate) enum QueueError {
    /// The queue is full (more images waiting than the server accepts).
    Full,
    /// The worker has stopped (shutdown, or it panicked).
    Closed,
}

impl Batcher {
    /// Starts the worker thread for `scorer`; at most `queue` images wait at a time.
    pub(crate) fn start(
        scorer: Arc<dyn Scorer>,
        max_batch: usize,
        max_wait: Duration,
        queue: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Batcher, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let coming = Arc::new(AtomicUsize::new(0));
        let c = coming.clone();
        let handle = std::thread::Builder::new()
            .name("daad-scorer".into())
            .spawn(move || worker(scorer, rx, c, max_batch.max(1), max_wait, metrics))?;
        Ok((Batcher { tx, coming }, handle))
    }

    /// Counts a request as on its way until the returned guard drops (after its last submit),
    /// so the worker waits for its images.
    pub(crate) fn coming(&self) -> Coming {
        self.coming.fetch_add(1, Ordering::SeqCst);
        Coming(self.coming.clone())
    }

    /// True when the worker has stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues one image; the receiver gets its score.
    pub(crate) fn submit(
        &self,
        image: DynamicImage,
        detail: bool,
    ) -> Result<oneshot::Receiver<JobResult>, QueueError> {
        let (reply, rx) = oneshot::channel();
        let job = Job { image, detail, enqueued: Instant::now(), reply };
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })?;
        Ok(rx)
    }
}

fn worker(
    scorer: Arc<dyn Scorer>,
    mut rx: mpsc::Receiver<Job>,
    coming: Arc<AtomicUsize>,
    max_batch: usize,
    max_wait: Duration,
    metrics: Arc<Metrics>,
) {
    // A current-thread runtime only to wait on the channel with a deadline; scoring itself
    // runs on this thread, outside any async context.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the scorer's timer runtime: {e}");
            return;
        }
    };
    while let Some(first) = rx.blocking_recv() {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                // Nothing queued and no request on its way: waiting would only add latency.
                Err(mpsc::error::TryRecvError::Empty) if coming.load(Ordering::SeqCst) == 0 => {
                    break
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    match rt.block_on(async { tokio::time::timeout_at(deadline, rx.recv()).await })
                    {
                        Ok(Some(j)) => jobs.push(j),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        // Clients that gave up (timeout, disconnect) are not scored.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let start = Instant::now();
        let detail = jobs.iter().any(|j| j.detail);
        let images: Vec<DynamicImage> =
            jobs.iter_mut().map(|j| std::mem::take(&mut j.image)).collect();
        let n = images.len();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scorer.score(&images, detail)
        }))
        .unwrap_or_else(|_| Err(ScoreError("the scorer panicked".into())));
        let model_s = start.elapsed().as_secs_f64();
        metrics.batch(n);
        tracing::debug!("scored a batch of {n} in {model_s:.4}s");
        match result {
            Ok(scores) if scores.len() == n => {
                for (job, score) in jobs.into_iter().zip(scores) {
                    let timing = BatchTiming {
                        queue_s: (start - job.enqueued).as_secs_f64(),
                        model_s,
                        batch_size: n,
                    };
                    let _ = job.reply.send(Ok((score, timing)));
                }
            }
            other => {
                let e = Arc::new(match other {
                    Err(e) => e,
                    Ok(s) => {
                        ScoreError(format!("the scorer returned {} scores for {n} images", s.len()))
                    }
                });
                tracing::error!("scoring a batch of {n} failed: {e}");
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

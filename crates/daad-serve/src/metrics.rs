//! The server's counters and histograms, rendered as Prometheus text (`GET /metrics`). Hand
//! written: four families of atomics do not justify a metrics framework.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the request latency histogram.
const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
/// Upper bounds of the batch size histogram.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A cumulative histogram with fixed buckets (sum kept in micro-units to stay atomic).
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micro: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micro.fetch_add((v.max(0.0) * 1e6).round() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", c.load(Ordering::Relaxed));
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {n}");
    }
}

/// Everything `/metrics` reports.
pub(crate) struct Metrics {
    requests: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    images: AtomicU64,
    latency: Histogram,
    batch: Histogram,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Metrics {
            requests: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            images: AtomicU64::new(0),
            latency: Histogram::new(&LATENCY_BUCKETS),
            batch: Histogram::new(&BATCH_BUCKETS),
        }
    }

    /// One finished predict request with its HTTP status and duration.
    pub(crate) fn request(&self, status: u16, seconds: f64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match status {
            400..=499 => self.client_errors.fetch_add(1, Ordering::Relaxed),
            500..=599 => self.server_errors.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        self.latency.observe(seconds);
    }

    /// One batch of `n` images through the model.
    pub(crate) fn batch(&self, n: usize) {
        self.images.fetch_add(n as u64, Ordering::Relaxed);
        self.batch.observe(n as f64);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(&mut s, "daad_requests_total", "Predict requests answered.", &self.requests);
        let _ = writeln!(
            s,
            "# HELP daad_request_errors_total Predict requests answered with an error, by class.\n\
             # TYPE daad_request_errors_total counter\n\
             daad_request_errors_total{{class=\"client\"}} {}\n\
             daad_request_errors_total{{class=\"server\"}} {}",
            self.client_errors.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed)
        );
        counter(&mut s, "daad_images_scored_total", "Images scored by the model.", &self.images);
        self.latency.render(
            &mut s,
            "daad_request_duration_seconds",
            "Predict request latency (body read to response).",
        );
        self.batch.render(&mut s, "daad_batch_size", "Images per model batch.");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_text_is_prometheus() {
        let m = Metrics::new();
        m.request(200, 0.003);
        m.request(413, 0.0005);
        m.batch(3);
        let t = m.render();
        assert!(t.contains("daad_requests_total 2"), "{t}");
        assert!(t.contains("daad_request_errors_total{class=\"client\"} 1"), "{t}");
        assert!(t.contains("daad_request_duration_seconds_bucket{le=\"0.001\"} 1"), "{t}");
        assert!(t.contains("daad_request_duration_seconds_bucket{le=\"0.005\"} 2"), "{t}");
        assert!(t.contains("daad_batch_size_bucket{le=\"2\"} 0"), "{t}");
        assert!(t.contains("daad_batch_size_bucket{le=\"4\"} 1"), "{t}");
        assert!(t.contains("daad_batch_size_sum 3"), "{t}");
    }
}

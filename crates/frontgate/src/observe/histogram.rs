//! Histograms as fixed arrays of atomic bucket counters, beside the Prometheus exporter.
//!
//! The exporter keeps every histogram sample in a lock-free queue until upkeep or a scrape
//! drains it into buckets: about 250 instructions per sample on the request path, and at tens
//! of thousands of requests per second a queue that grows by megabytes between drains. Here a
//! sample is two relaxed atomic adds into buckets fixed at registration, and a scrape sums them.
//! [`Recorder`] hands out these histograms and passes counters and gauges to the exporter;
//! [`MetricsHandle::render`] writes both in the exporter's text format, with its own formatting code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Counter, Gauge, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::formatting::{
    key_to_parts, write_help_line, write_metric_line, write_type_line,
};
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

/// One histogram series: a count per bucket (not cumulative; the last is `+Inf`) and the sum.
pub(crate) struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    /// Nanoseconds (values are seconds): an integer sum is one atomic add, a float one a CAS loop.
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Cumulative counts per bound, then the total (the `+Inf` bucket), and the sum in seconds.
    pub(crate) fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self.buckets.iter().map(|b| {
            total += b.load(Relaxed);
            total
        });
        (cumulative.collect(), self.sum_nanos.load(Relaxed) as f64 / 1e9)
    }
}

impl HistogramFn for Histogram {
    fn record(&self, seconds: f64) {
        // Bounds are inclusive (`le`); NaN falls through to +Inf. Latencies land in the first few.
        let i = self.bounds.iter().position(|&b| seconds <= b).unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Relaxed);
        // `as` saturates: a negative or NaN sample adds 0.
        self.sum_nanos.fetch_add((seconds * 1e9) as u64, Relaxed);
    }
}

#[derive(Default)]
struct Family {
    help: Option<SharedString>,
    /// By the series' rendered labels, so a scrape lists them in a stable order.
    series: BTreeMap<Vec<String>, Arc<Histogram>>,
}

/// The global recorder: the exporter for counters and gauges, fixed-bucket histograms for the rest.
pub(crate) struct Recorder {
    prometheus: PrometheusRecorder,
    bounds: &'static [f64],
    histograms: Arc<Mutex<BTreeMap<String, Family>>>,
}

/// What the admin listener renders from; cheap to clone.
#[derive(Clone)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    histograms: Arc<Mutex<BTreeMap<String, Family>>>,
}

impl Recorder {
    pub(crate) fn new(prometheus: PrometheusRecorder, bounds: &'static [f64]) -> Self {
        Recorder { prometheus, bounds, histograms: Arc::default() }
    }

    pub(crate) fn handle(&self) -> MetricsHandle {
        MetricsHandle { prometheus: self.prometheus.handle(), histograms: self.histograms.clone() }
    }
}

impl MetricsHandle {
    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = self.prometheus.render();
        let families = self.histograms.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, family) in families.iter().filter(|(_, f)| !f.series.is_empty()) {
            if let Some(help) = &family.help {
                write_help_line(&mut out, name, help);
            }
            write_type_line(&mut out, name, "histogram");
            for (labels, histogram) in &family.series {
                let (cumulative, sum) = histogram.snapshot();
                for (bound, count) in histogram.bounds.iter().zip(&cumulative) {
                    write_metric_line(
                        &mut out,
                        name,
                        Some("bucket"),
                        labels,
                        Some(("le", bound)),
                        count,
                        None,
                    );
                }
                let total = cumulative.last().copied().unwrap_or(0);
                write_metric_line(
                    &mut out,
                    name,
                    Some("bucket"),
                    labels,
                    Some(("le", "+Inf")),
                    total,
                    None,
                );
                write_metric_line::<&str, f64>(
                    &mut out,
                    name,
                    Some("sum"),
                    labels,
                    None,
                    sum,
                    None,
                );
                write_metric_line::<&str, u64>(
                    &mut out,
                    name,
                    Some("count"),
                    labels,
                    None,
                    total,
                    None,
                );
            }
            out.push('\n');
        }
        out
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        let mut families = self.histograms.lock().unwrap_or_else(PoisonError::into_inner);
        families.entry(key.as_str().to_owned()).or_default().help = Some(description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.prometheus.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.prometheus.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        // The exporter's own formatting: the same name and label sanitising as its other metrics.
        let (name, labels) = key_to_parts(key, None);
        let mut families = self.histograms.lock().unwrap_or_else(PoisonError::into_inner);
        let series = families.entry(name).or_default().series.entry(labels);
        metrics::Histogram::from_arc(
            series.or_insert_with(|| Arc::new(Histogram::new(self.bounds))).clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Recorder as _;
    use metrics_exporter_prometheus::PrometheusBuilder;

    const BOUNDS: &[f64] = &[0.001, 0.01, 1.0];

    fn recorder() -> Recorder {
        Recorder::new(PrometheusBuilder::new().build_recorder(), BOUNDS)
    }

    #[test]
    fn samples_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let h = Histogram::new(BOUNDS);
        for s in [0.0005, 0.001, 0.0011, 0.5, 1.0, 2.0, f64::NAN, -1.0] {
            h.record(s);
        }
        let (cumulative, sum) = h.snapshot();
        // ≤0.001: 0.0005, 0.001, -1; ≤0.01: +0.0011; ≤1: +0.5, 1.0; +Inf: +2.0, NaN.
        assert_eq!(cumulative, [3, 4, 6, 8]);
        assert!((sum - 3.5026).abs() < 1e-8, "{sum}");
    }

    #[test]
    fn render_writes_cumulative_buckets_sum_and_count_with_escaped_labels() {
        let r = recorder();
        r.describe_histogram("t_seconds".into(), None, "Latency of\nthings".into());
        let key = Key::from_parts("t_seconds", vec![metrics::Label::new("route", "GET /a\"b")]);
        let meta = Metadata::new("t", metrics::Level::INFO, None);
        let h = r.register_histogram(&key, &meta);
        h.record(0.0001);
        h.record(0.5);
        // Registering the same key again gives the same series.
        r.register_histogram(&key, &meta).record(5.0);
        r.register_counter(&Key::from_name("c_total"), &meta).increment(2);
        let text = r.handle().render();
        let expected = concat!(
            "# HELP t_seconds Latency of\\nthings\n",
            "# TYPE t_seconds histogram\n",
            "t_seconds_bucket{route=\"GET /a\\\"b\",le=\"0.001\"} 1\n",
            "t_seconds_bucket{route=\"GET /a\\\"b\",le=\"0.01\"} 1\n",
            "t_seconds_bucket{route=\"GET /a\\\"b\",le=\"1\"} 2\n",
            "t_seconds_bucket{route=\"GET /a\\\"b\",le=\"+Inf\"} 3\n",
            "t_seconds_sum{route=\"GET /a\\\"b\"} 5.5001\n",
            "t_seconds_count{route=\"GET /a\\\"b\"} 3\n",
            "\n",
        );
        assert!(text.contains(expected), "{text}");
        assert!(text.contains("c_total 2\n"), "{text}");
    }

    #[test]
    fn a_described_histogram_without_series_is_not_rendered() {
        let r = recorder();
        r.describe_histogram("unused_seconds".into(), None, "never recorded".into());
        assert!(!r.handle().render().contains("unused_seconds"));
    }
}

//! Numbers out: latency percentiles, the machine, the summary block and its
//! one-line JSON twin.

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in microseconds, 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Summarizes a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| round2(micros as f64 / 1000.0);
        Self {
            count: histogram.len(),
            mean_ms: round2(histogram.mean() / 1000.0),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }

    /// `p50 1.23 ms, p95 …` for the progress output.
    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (mean {:.2} ms, n = {})",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms, self.mean_ms, self.count
        )
    }
}

/// Rounds to two decimals, so the JSON stays readable.
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The machine the benchmark ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// `MemTotal` of /proc/meminfo, in GiB.
    pub memory_gib: f64,
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// `uname -sr`-like: the OS and architecture.
    pub os: String,
    /// The 1-minute load average when the run started: other work on the
    /// machine (builds, other benchmarks) skews every number.
    pub load_average_at_start: f64,
}

impl Machine {
    /// Reads what Linux tells; fields it cannot read stay empty or zero.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_default();
        Self {
            cpus,
            memory_gib: round2(memory_kib / 1024.0 / 1024.0),
            cpu_model,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            load_average_at_start: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|text| text.split_whitespace().next().and_then(|load| load.parse().ok()))
                .unwrap_or(0.0),
        }
    }
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Always `consign-bench`.
    pub bench: &'static str,
    /// This program's version.
    pub version: &'static str,
    /// The machine.
    pub machine: Machine,
    /// Whether the server ran on this machine too (spawned, or a loopback URL).
    pub server_on_same_machine: bool,
    /// `sqlite`, `postgres` or `unknown`.
    pub engine: &'static str,
    /// Concurrent checkout clients.
    pub clients: u32,
    /// Catalog size.
    pub skus: u32,
    /// SKUs per checkout.
    pub items_per_order: u32,
    /// Phase 2.
    pub checkout: CheckoutSummary,
    /// Phase 3, the top-up.
    pub fill: FillSummary,
    /// Phase 3, the list.
    pub list: ListSummary,
}

/// Phase 2's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct CheckoutSummary {
    /// Checkouts sent.
    pub requested: u64,
    /// 201 answers.
    pub created: u64,
    /// Wall time.
    pub seconds: f64,
    /// 201 answers per second.
    pub per_second: f64,
    /// Latency of the 201 answers.
    pub latency: Latency,
    /// Other answers by status (and problem code).
    pub failures: std::collections::BTreeMap<String, u64>,
}

/// How the database was topped up for the list.
#[derive(Clone, Debug, Serialize)]
pub struct FillSummary {
    /// `sql` or `api`.
    pub mode: &'static str,
    /// Orders the brand had before.
    pub before: u64,
    /// Orders added.
    pub added: u64,
    /// Wall time.
    pub seconds: f64,
    /// Orders added per second.
    pub per_second: f64,
}

/// The order-list numbers.
#[derive(Clone, Debug, Serialize)]
pub struct ListSummary {
    /// Orders the brand had while listing.
    pub orders_in_brand: u64,
    /// Requests sent.
    pub requested: u64,
    /// 200 answers with a full page.
    pub ok: u64,
    /// Wall time.
    pub seconds: f64,
    /// Requests per second (sequential, so 1000 / mean latency).
    pub per_second: f64,
    /// Latency of the 200 answers.
    pub latency: Latency,
    /// Other answers by status.
    pub failures: std::collections::BTreeMap<String, u64>,
}

impl Summary {
    /// The human summary block, then the JSON line.
    pub fn print(&self) {
        let m = &self.machine;
        println!();
        println!("== Summary ==");
        println!("machine        {} CPUs, {:.1} GiB memory, {} ({})", m.cpus, m.memory_gib, m.cpu_model, m.os);
        println!("load average   {:.2} (1 minute, at the start)", m.load_average_at_start);
        if self.server_on_same_machine {
            println!("               client and server share this machine's {} CPUs", m.cpus);
        }
        println!("engine         {}", self.engine);
        println!("catalog        {} SKUs, {} per order", self.skus, self.items_per_order);
        let c = &self.checkout;
        println!(
            "checkout       {} clients, {}/{} created in {:.2} s = {:.1} checkouts/s",
            self.clients, c.created, c.requested, c.seconds, c.per_second
        );
        println!("               {}", c.latency.line());
        println!("               failures: {}", failures_line(&c.failures));
        let f = &self.fill;
        println!(
            "{:<15}{} orders before, {} added in {:.1} s ({:.0}/s)",
            format!("fill ({})", f.mode),
            f.before,
            f.added,
            f.seconds,
            f.per_second
        );
        let l = &self.list;
        println!(
            "order list     {} orders in the brand, {}/{} ok in {:.2} s = {:.1} requests/s (sequential, limit=50)",
            l.orders_in_brand, l.ok, l.requested, l.seconds, l.per_second
        );
        println!("               {}", l.latency.line());
        println!("               failures: {}", failures_line(&l.failures));
        println!();
        println!("{}", serde_json::to_string(self).expect("a summary serializes"));
    }

    /// Whether every request got the answer it should have.
    pub fn clean(&self) -> bool {
        self.checkout.failures.is_empty() && self.list.failures.is_empty()
    }
}

/// `none`, or `409 insufficient_stock: 3, 500 internal: 1`.
pub fn failures_line(failures: &std::collections::BTreeMap<String, u64>) -> String {
    if failures.is_empty() {
        return "none".to_owned();
    }
    failures.iter().map(|(key, count)| format!("{key}: {count}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_reported_in_milliseconds() {
        let mut histogram = new_histogram();
        for micros in 1..=1000u64 {
            histogram.record(micros * 1000).unwrap();
        }
        let latency = Latency::of(&histogram);
        assert_eq!(latency.count, 1000);
        assert!((latency.p50_ms - 500.0).abs() < 1.0, "{latency:?}");
        assert!((latency.p99_ms - 990.0).abs() < 1.0, "{latency:?}");
        assert!((latency.max_ms - 1000.0).abs() < 1.0, "{latency:?}");
    }

    #[test]
    fn no_failures_reads_none() {
        assert_eq!(failures_line(&Default::default()), "none");
    }
}

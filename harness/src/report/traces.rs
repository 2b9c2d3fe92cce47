//! Where a checkout's time goes: the hop breakdown of docs/tracing.md over the sampled
//! checkout traces, per mode and VU level, in numbers ([`breakdown`]) and laid out for the
//! report ([`section`]).
//!
//! A trace counts in a counted run when its earliest span starts inside the run's window
//! ([`trace_windows`]: from the end of the run before, since the recorded start is up to a
//! second late); it is a checkout trace when it has a server span named `POST /api/payments`. A hop is
//! `service.name` and span name; its time in one trace is the sum of its spans' exclusive
//! time (a span's duration minus the union of its children's intervals, clipped to it).
//! Per hop: the median and p95 of that time over the traces that have the hop, the share of
//! traces that have it, and the median offset of its first start from the trace's first span,
//! which orders the hops.

use super::charts;
use super::manifest::{Manifest, RunKind};
use super::table::Unit;
use super::view::{Chart, MODES};
use crate::rundata::k6::percentile;
use crate::rundata::traces::{Span, SpanKind, Spans};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The request span that makes a trace a checkout's.
pub const CHECKOUT_SPAN: &str = "POST /api/payments";
/// Hops in fewer traces than this share are left out of the stacked bar (their median is
/// over the few traces that have them, and would overstate a typical checkout).
pub const BAR_MIN_SHARE: f64 = 0.5;

const MS: Unit = Unit::significant(" ms");

/// One trace: its spans, whatever replica wrote them.
#[derive(Debug, Clone)]
pub struct Trace {
    pub spans: Vec<Span>,
}

/// A hop's time in one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopTime {
    /// The sum of its spans' exclusive times.
    pub exclusive_ns: u64,
    /// Its first span's start, from the trace's first span's.
    pub offset_ns: u64,
}

impl Trace {
    /// The earliest start of its spans.
    pub fn start_ns(&self) -> u64 {
        self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0)
    }

    /// The latest end of its spans.
    pub fn end_ns(&self) -> u64 {
        self.spans.iter().map(|s| s.end_ns).max().unwrap_or(0)
    }

    /// It has a server span named [`CHECKOUT_SPAN`].
    pub fn is_checkout(&self, spans: &Spans) -> bool {
        self.spans
            .iter()
            .any(|s| s.kind == SpanKind::Server && spans.hop(s).name == CHECKOUT_SPAN)
    }

    /// Per hop (its index in [`Spans::hops`]), its time in this trace.
    pub fn hop_times(&self) -> BTreeMap<u32, HopTime> {
        let mut children: HashMap<u64, Vec<&Span>> = HashMap::new();
        for s in &self.spans {
            if let Some(parent) = s.parent_span_id {
                children.entry(parent).or_default().push(s);
            }
        }
        let start = self.start_ns();
        let mut times: BTreeMap<u32, HopTime> = BTreeMap::new();
        for s in &self.spans {
            let exclusive = exclusive_ns(
                s,
                children.get(&s.span_id).map(Vec::as_slice).unwrap_or(&[]),
            );
            let offset = s.start_ns - start;
            let t = times.entry(s.hop).or_insert(HopTime {
                exclusive_ns: 0,
                offset_ns: offset,
            });
            t.exclusive_ns += exclusive;
            t.offset_ns = t.offset_ns.min(offset);
        }
        times
    }
}

/// `span`'s duration minus the part of it its `children` cover: the union of their
/// intervals, each clipped to the span, so overlapping children are subtracted once.
pub fn exclusive_ns(span: &Span, children: &[&Span]) -> u64 {
    let mut intervals: Vec<(u64, u64)> = children
        .iter()
        .map(|c| {
            (
                c.start_ns.clamp(span.start_ns, span.end_ns),
                c.end_ns.clamp(span.start_ns, span.end_ns),
            )
        })
        .filter(|(a, b)| b > a)
        .collect();
    intervals.sort_unstable();
    let mut covered = 0;
    let mut current: Option<(u64, u64)> = None;
    for (a, b) in intervals {
        current = match current {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                covered += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((ca, cb)) = current {
        covered += cb - ca;
    }
    (span.end_ns - span.start_ns) - covered
}

/// The spans grouped by trace, in the order of their traces' first span.
pub fn group(spans: &Spans) -> Vec<Trace> {
    let mut by_id: HashMap<u128, Vec<Span>> = HashMap::new();
    for s in &spans.spans {
        by_id.entry(s.trace_id).or_default().push(*s);
    }
    let mut traces: Vec<Trace> = by_id.into_values().map(|spans| Trace { spans }).collect();
    traces.sort_by_key(|t| (t.start_ns(), t.spans[0].trace_id));
    traces
}

/// One hop over a set of traces.
#[derive(Debug, Clone, PartialEq)]
pub struct HopFigures {
    /// `inventory process ReservationRequested.v1`.
    pub hop: String,
    /// `inventory`.
    pub service: String,
    pub median_ms: f64,
    pub p95_ms: f64,
    /// The share of the traces that have this hop, 0..1.
    pub share: f64,
    pub median_offset_ms: f64,
    /// A held status poll: in the table, not in the bar nor the hops' sum (it overlaps the
    /// hops it waits for).
    pub held: bool,
}

/// The hop breakdown of a set of checkout traces.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    pub traces: usize,
    /// Ordered by median start offset, then name.
    pub hops: Vec<HopFigures>,
    /// First span start → last span end.
    pub end_to_end_median_ms: f64,
    pub end_to_end_p95_ms: f64,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The breakdown of `traces` (hops named from `spans`); `None` without traces.
pub fn breakdown(traces: &[&Trace], spans: &Spans) -> Option<Breakdown> {
    if traces.is_empty() {
        return None;
    }
    let mut per_hop: BTreeMap<u32, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut end_to_end = Vec::with_capacity(traces.len());
    for t in traces {
        end_to_end.push(ms(t.end_ns() - t.start_ns()));
        for (hop, time) in t.hop_times() {
            let e = per_hop.entry(hop).or_default();
            e.0.push(ms(time.exclusive_ns));
            e.1.push(ms(time.offset_ns));
        }
    }
    let n = traces.len() as f64;
    let mut hops: Vec<HopFigures> = per_hop
        .into_iter()
        .map(|(hop, (mut times, mut offsets))| HopFigures {
            hop: spans.hops[hop as usize].label(),
            service: spans.hops[hop as usize].service.clone(),
            share: times.len() as f64 / n,
            median_ms: percentile(&mut times, 50.0).unwrap_or(0.0),
            p95_ms: percentile(&mut times, 95.0).unwrap_or(0.0),
            median_offset_ms: percentile(&mut offsets, 50.0).unwrap_or(0.0),
            held: spans.hops[hop as usize].held,
        })
        .collect();
    hops.sort_by(|a, b| {
        a.median_offset_ms
            .total_cmp(&b.median_offset_ms)
            .then_with(|| a.hop.cmp(&b.hop))
    });
    Some(Breakdown {
        traces: traces.len(),
        hops,
        end_to_end_median_ms: percentile(&mut end_to_end.clone(), 50.0)?,
        end_to_end_p95_ms: percentile(&mut end_to_end, 95.0)?,
    })
}

/// One mode's spans, grouped into traces once.
pub struct ModeTraces<'a> {
    pub mode: String,
    pub spans: &'a Spans,
    pub traces: Vec<Trace>,
}

impl<'a> ModeTraces<'a> {
    pub fn new(mode: &str, spans: &'a Spans) -> Self {
        ModeTraces {
            mode: mode.to_string(),
            spans,
            traces: group(spans),
        }
    }

    /// The checkout traces whose first span started inside one of `windows` (Unix ns,
    /// inclusive).
    fn checkouts_in(&self, windows: &[(i64, i64)]) -> Vec<&Trace> {
        self.traces
            .iter()
            .filter(|t| {
                let start = i64::try_from(t.start_ns()).unwrap_or(i64::MAX);
                windows.iter().any(|(a, b)| (*a..=*b).contains(&start))
            })
            .filter(|t| t.is_checkout(self.spans))
            .collect()
    }
}

/// The windows (Unix ns, inclusive) in which a trace of `mode` counts for its counted runs at
/// `vus`: from just after the end of the mode's run before (or the suite's start) to the
/// run's end. Not from the run's recorded start: the harness notices that k6's scenario
/// started at its next once-a-second check, so the first second's journeys would be lost
/// (a sixth of a 5 s run's, measured); between two runs the suite only drains, and setup's
/// logins are no checkout traces.
pub fn trace_windows(manifest: &Manifest, mode: &str, vus: usize) -> Vec<(i64, i64)> {
    let mut windows = Vec::new();
    let mut previous_end = i64::MIN;
    for r in manifest.runs.iter().filter(|r| r.mode == mode) {
        let end = r.ended_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        if r.kind == RunKind::Counted && r.vus == vus {
            windows.push((previous_end.saturating_add(1), end));
        }
        previous_end = end;
    }
    windows
}

/// A hop's line of a mode's table.
#[derive(Debug, Clone, Serialize)]
pub struct HopRow {
    pub hop: String,
    pub median: String,
    pub p95: String,
    /// `100 %`: how many of the traces have it.
    pub share: String,
}

/// One mode at one VU level.
#[derive(Debug, Clone, Serialize)]
pub struct ModeBreakdown {
    pub mode: String,
    pub mode_name: String,
    /// `3 checkout traces from 2 counted runs …; end to end …`.
    pub summary: String,
    pub rows: Vec<HopRow>,
}

/// One VU level: a table per mode with traces, and the stacked bar of both.
#[derive(Serialize)]
pub struct TraceLevel {
    pub vus: usize,
    pub modes: Vec<ModeBreakdown>,
    pub chart: Option<Chart>,
}

/// The report's section "Where a checkout's time goes (traces)".
#[derive(Serialize)]
pub struct TraceSection {
    /// What was sampled and how to read the tables.
    pub intro: String,
    pub levels: Vec<TraceLevel>,
    /// Lines of the span files that were skipped, folders that could not be read.
    pub notes: Vec<String>,
    /// The one line shown instead of the tables when no checkout trace was found.
    pub empty: Option<String>,
}

/// `0.1` → `0.1 (1 journey in 10)`.
fn ratio_text(ratio: f64) -> String {
    if ratio >= 1.0 {
        "1 (every journey)".to_string()
    } else if ratio > 0.0 {
        format!("{ratio} (1 journey in {:.0})", 1.0 / ratio)
    } else {
        "0".to_string()
    }
}

/// The section, for the VU levels `levels`, from each mode's spans (`loaded`: by mode, the
/// spans or why they could not be read). `None` when tracing was off and there are no spans:
/// the report then says nothing about traces.
pub fn section(
    manifest: &Manifest,
    levels: &[usize],
    loaded: &[(String, Result<Spans, String>)],
) -> anyhow::Result<Option<TraceSection>> {
    let ratio = manifest.settings.trace_sample_ratio;
    let mut notes = Vec::new();
    let mut modes: Vec<ModeTraces> = Vec::new();
    for (mode, spans) in loaded {
        match spans {
            Ok(spans) => {
                if spans.skipped_lines > 0 {
                    notes.push(format!(
                        "{mode}: {} line(s) of its span files could not be read and were skipped \
                         (a replica killed mid-write leaves its last line cut).",
                        spans.skipped_lines
                    ));
                }
                if spans.skipped_spans > 0 {
                    notes.push(format!(
                        "{mode}: {} span(s) without a valid id or time were left out.",
                        spans.skipped_spans
                    ));
                }
                modes.push(ModeTraces::new(mode, spans));
            }
            Err(e) => notes.push(format!("{mode}: the span files could not be read: {e}")),
        }
    }
    let any_spans = modes.iter().any(|m| !m.spans.spans.is_empty());
    if ratio <= 0.0 && !any_spans && notes.is_empty() {
        return Ok(None);
    }

    let mut out_levels = Vec::new();
    let mut used = 0;
    for vus in levels {
        let mut level_modes = Vec::new();
        let mut bars = Vec::new();
        for (mode, mode_name) in MODES {
            let Some(m) = modes.iter().find(|m| m.mode == mode) else {
                continue;
            };
            let windows = trace_windows(manifest, mode, *vus);
            let checkouts = m.checkouts_in(&windows);
            let Some(b) = breakdown(&checkouts, m.spans) else {
                continue;
            };
            used += b.traces;
            let sum: f64 = b.hops.iter().filter(|h| !h.held).map(|h| h.median_ms).sum();
            level_modes.push(ModeBreakdown {
                mode: mode.to_string(),
                mode_name: mode_name.to_string(),
                summary: format!(
                    "{} checkout trace(s) from {} counted run(s). End to end, first span to \
                     last: median {}, p95 {}; the hops' medians add up to {} (held polls \
                     aside).",
                    b.traces,
                    windows.len(),
                    MS.format(b.end_to_end_median_ms),
                    MS.format(b.end_to_end_p95_ms),
                    MS.format(sum)
                ),
                rows: b
                    .hops
                    .iter()
                    .map(|h| HopRow {
                        hop: h.hop.clone(),
                        median: MS.format(h.median_ms),
                        p95: MS.format(h.p95_ms),
                        share: format!("{:.0} %", h.share * 100.0),
                    })
                    .collect(),
            });
            bars.push(charts::StackedBar {
                name: if mode == "sync" { "Sync" } else { "Async" }.to_string(),
                segments: b
                    .hops
                    .iter()
                    .filter(|h| h.share >= BAR_MIN_SHARE && !h.held)
                    .map(|h| charts::Segment {
                        label: h.hop.clone(),
                        group: h.service.clone(),
                        value: h.median_ms,
                    })
                    .collect(),
            });
        }
        if level_modes.is_empty() {
            continue;
        }
        let title = format!("Where a checkout's time goes at {vus} VUs (median per hop)");
        let chart = Chart {
            svg: charts::stacked_bars(&title, "ms (median exclusive time per hop)", &bars)?,
            file: format!("traces-{vus}.svg"),
            title,
        };
        out_levels.push(TraceLevel {
            vus: *vus,
            modes: level_modes,
            chart: Some(chart),
        });
    }
    let empty = out_levels.is_empty().then(|| {
        format!(
            "No checkout traces in the counted runs ({} span(s) in the span files): run with \
             `--trace-sample RATIO` (`flashsale compare`; a compose study sends its spans to \
             Jaeger, not to this folder).",
            modes.iter().map(|m| m.spans.spans.len()).sum::<usize>()
        )
    });
    let intro = format!(
        "From the services' spans (docs/tracing.md) of a sample of the journeys: trace sample \
         ratio {}, {used} checkout trace(s) used. A checkout trace is one journey that reached \
         `{CHECKOUT_SPAN}`, counted in the counted run it started in (its first span after the \
         run before ended, and before this one's end). A hop is a service and a span name; its time in a trace is the sum of its spans' exclusive time \
         (a span's duration minus the time its child spans cover): a request waiting for its \
         callee counts as the callee's time, an event's time in the broker as its `receive` \
         hop's. Median and p95 are over the traces that have the hop; \"in traces\" is the share \
         of the traces that have it. Hops are in the order of their median start in the trace. \
         The bar stacks the medians of the hops in at least {:.0} % of the traces, a hue per \
         service. A status poll the service held until the status changed is marked (held): \
         its time is the wait for the hops of the events it waits on, so it is in the table \
         but neither in the bar nor in the hops' sum.",
        ratio_text(ratio),
        BAR_MIN_SHARE * 100.0
    );
    Ok(Some(TraceSection {
        intro,
        levels: out_levels,
        notes,
        empty,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u64, parent: Option<u64>, start: u64, end: u64) -> Span {
        Span {
            trace_id: 1,
            span_id: id,
            parent_span_id: parent,
            kind: SpanKind::Internal,
            start_ns: start,
            end_ns: end,
            hop: 0,
        }
    }

    use crate::report::manifest::Manifest;
    use std::path::Path;

    fn fixture() -> &'static Path {
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/report"
        ))
    }

    /// The fixture's checkout traces of `mode` in its counted runs at 500 VUs, broken down,
    /// and how many traces its span files hold.
    fn fixture_breakdown(mode: &str) -> (Breakdown, usize) {
        let manifest = Manifest::load(fixture()).expect("manifest");
        let loaded = crate::report::data::load_traces(fixture(), &manifest);
        let (_, spans) = loaded
            .iter()
            .find(|(m, _)| m == mode)
            .expect("the mode's spans");
        let spans = spans.as_ref().expect("readable");
        let traces = ModeTraces::new(mode, spans);
        let windows = trace_windows(&manifest, mode, 500);
        let checkouts = traces.checkouts_in(&windows);
        (
            breakdown(&checkouts, spans).expect("traces"),
            traces.traces.len(),
        )
    }

    fn hop<'a>(b: &'a Breakdown, name: &str) -> &'a HopFigures {
        b.hops
            .iter()
            .find(|h| h.hop == name)
            .unwrap_or_else(|| panic!("no hop {name} in {:?}", b.hops))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_run_counts_the_traces_started_after_the_run_before_it_ended() {
        let manifest = Manifest::load(fixture()).expect("manifest");
        let at = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("a time")
                .timestamp_nanos_opt()
                .expect("ns")
        };
        // The fixture's sync runs: the warm-up 00:00:00–00:00:30, run 1 00:01:00–00:02:00,
        // run 2 00:03:00–00:04:00.
        assert_eq!(
            trace_windows(&manifest, "sync", 500),
            [
                (at("2026-01-01T00:00:30Z") + 1, at("2026-01-01T00:02:00Z")),
                (at("2026-01-01T00:02:00Z") + 1, at("2026-01-01T00:04:00Z")),
            ]
        );
        assert!(
            trace_windows(&manifest, "sync", 250).is_empty(),
            "the warm-up's level"
        );
    }

    #[test]
    fn sync_checkouts_break_down_into_nested_calls() {
        // Fixture (raw/sync/traces): checkout A (run 1), B = A at twice its times (run 1), C =
        // three times (run 2); a sold-out journey in run 1 (no payment: not a checkout); a
        // checkout in the warm-up at ten times (not counted). In A, `order POST /api/payments`
        // lasts 60 ms and calls bind (4 ms), charge (34 ms) and confirm (18 ms): 4 ms its own;
        // payment's charge is 32 ms; confirm (16 ms) waits 14 ms for the commit call, whose
        // server span is 12 ms.
        let (b, all) = fixture_breakdown("sync");

        assert_eq!(
            b.traces, 3,
            "A, B and C; not the sold-out or the warm-up journey"
        );
        assert_eq!(
            all, 5,
            "the span files hold the sold-out and the warm-up journeys too"
        );
        // Over (x, 2x, 3x): median 2x, p95 2x + 0.9 x.
        for (name, x) in [
            ("order POST /api/payments", 4.0),
            ("order POST /internal/payments/charges", 2.0),
            ("payment POST /internal/payments/charges", 32.0),
            ("reservation POST /internal/reservations/{id}/confirm", 2.0),
            (
                "inventory POST /internal/inventory/holds/{reservation_id}/commit",
                12.0,
            ),
            ("reservation POST /api/reservations", 4.0),
            ("gateway GET /internal/gateway/carts/{cart_id}", 2.0),
        ] {
            let h = hop(&b, name);
            assert!(close(h.median_ms, 2.0 * x), "{name}: {h:?}");
            assert!(close(h.p95_ms, 2.9 * x), "{name}: {h:?}");
            assert!(close(h.share, 1.0), "{name}: {h:?}");
        }
        assert_eq!(b.hops.len(), 17);
        assert_eq!(b.hops[0].hop, "gateway POST /api/carts");
        assert_eq!(b.hops[8].hop, "order POST /api/payments");
        assert!(close(b.hops[8].median_offset_ms, 80.0), "{:?}", b.hops[8]);
        assert_eq!(
            b.hops[16].hop,
            "inventory POST /internal/inventory/holds/{reservation_id}/commit"
        );
        // A lasts 100 ms, of which 85 ms are the hops' (15 ms are k6's, between requests).
        assert!(close(b.end_to_end_median_ms, 200.0));
        assert!(close(b.end_to_end_p95_ms, 290.0));
        let sum: f64 = b.hops.iter().map(|h| h.median_ms).sum();
        assert!(close(sum, 170.0), "{sum}");
    }

    #[test]
    fn async_checkouts_break_down_into_the_event_chain() {
        // Fixture (raw/async/traces): A, B = 2 A (run 1), C = 3 A (run 2), where C's
        // PaymentSucceeded is consumed by inventory too. In A: `publish ReservationRequested.v1`
        // 22–25 ms, its `receive` 23–30 (2 ms of the publish are the broker's: 1 ms left);
        // `process ReservationRequested.v1` 30–40, its outbox row 36–42 (4 ms inside: 6 ms left).
        let (b, _) = fixture_breakdown("async");

        assert_eq!(b.traces, 3);
        for (name, x) in [
            ("reservation publish ReservationRequested.v1", 1.0),
            ("inventory receive ReservationRequested.v1", 7.0),
            ("inventory process ReservationRequested.v1", 6.0),
            ("inventory outbox StockReserved.v1", 6.0),
            ("reservation POST /api/reservations", 5.0),
            ("payment process ReservationBound.v1", 26.0),
            // Two held polls: 20 and 14 ms.
            ("reservation GET /api/reservations/{id} (held)", 34.0),
            // In C two receives (order's and inventory's) overlap inside the publish: their
            // union is subtracted once, so C's publish keeps 3 ms of its 6 (not 0).
            ("payment publish PaymentSucceeded.v1", 1.0),
        ] {
            let h = hop(&b, name);
            assert!(close(h.median_ms, 2.0 * x), "{name}: {h:?}");
            assert!(close(h.p95_ms, 2.9 * x), "{name}: {h:?}");
        }
        let fan_out = hop(&b, "inventory receive PaymentSucceeded.v1");
        assert!(close(fan_out.share, 1.0 / 3.0), "{fan_out:?}");
        assert!(close(fan_out.median_ms, 12.0) && close(fan_out.p95_ms, 12.0));
        assert_eq!(b.hops.len(), 33);
        assert_eq!(
            b.hops.last().map(|h| h.hop.as_str()),
            Some("inventory process PaymentSucceeded.v1"),
            "the fan-out starts last"
        );
        assert!(close(b.end_to_end_median_ms, 302.0));
        assert!(close(b.end_to_end_p95_ms, 437.9));
    }

    #[test]
    fn the_section_says_what_was_sampled_and_nothing_without_tracing() {
        let mut manifest = Manifest::load(fixture()).expect("manifest");
        let loaded = crate::report::data::load_traces(fixture(), &manifest);

        let traced = section(&manifest, &[500], &loaded)
            .expect("builds")
            .expect("a section");

        assert!(traced.empty.is_none());
        assert!(
            traced
                .intro
                .contains("trace sample ratio 0.1 (1 journey in 10), 6 checkout trace(s) used"),
            "{}",
            traced.intro
        );
        assert_eq!(
            traced.notes,
            [
                "async: 1 line(s) of its span files could not be read and were skipped (a replica \
              killed mid-write leaves its last line cut)."
            ]
        );
        let level = &traced.levels[0];
        assert_eq!(level.modes.len(), 2);
        assert_eq!(
            level.modes[0].summary,
            "3 checkout trace(s) from 2 counted run(s). End to end, first span to last: median \
             200 ms, p95 290 ms; the hops' medians add up to 170 ms (held polls aside)."
        );
        // Held polls are rows of the table, and neither in the bar nor in the hops' sum.
        let async_mode = &level.modes[1];
        let held: Vec<&str> = async_mode
            .rows
            .iter()
            .filter(|r| r.hop.ends_with("(held)"))
            .map(|r| r.hop.as_str())
            .collect();
        assert_eq!(
            held,
            [
                "reservation GET /api/reservations/{id} (held)",
                "order GET /api/orders/{id} (held)"
            ]
        );
        let charge = &level.modes[0].rows[12];
        assert_eq!(
            (
                charge.hop.as_str(),
                charge.median.as_str(),
                charge.p95.as_str(),
                charge.share.as_str()
            ),
            (
                "payment POST /internal/payments/charges",
                "64.0 ms",
                "92.8 ms",
                "100 %"
            )
        );
        let chart = level.chart.as_ref().expect("a chart");
        assert_eq!(chart.file, "traces-500.svg");
        // The fan-out hops (in a third of the traces) are in the table, not in the bar.
        assert!(chart.svg.contains("payment process ReservationBound.v1"));
        assert!(!chart.svg.contains("inventory receive PaymentSucceeded.v1"));
        assert!(!chart.svg.contains("(held)"));
        assert!(chart.svg.contains("reservation POST /api/reservations"));

        // A level without counted traces has no table; no level at all: one line.
        let none = section(&manifest, &[250], &loaded)
            .expect("builds")
            .expect("a section");
        assert!(none.levels.is_empty());
        assert!(none
            .empty
            .as_deref()
            .is_some_and(|e| e.contains("--trace-sample")));

        // Tracing off and no span files: the report says nothing about traces.
        manifest.settings.trace_sample_ratio = 0.0;
        assert!(section(&manifest, &[500], &[]).expect("builds").is_none());
    }

    #[test]
    fn overlapping_children_are_subtracted_once_and_clipped_to_the_span() {
        let parent = span(1, None, 100, 200);
        // 110–150 and 140–160 overlap (union 110–160: 50), 190–250 sticks out (clipped:
        // 190–200: 10), 300–400 lies outside (nothing).
        let children = [
            span(2, Some(1), 110, 150),
            span(3, Some(1), 140, 160),
            span(4, Some(1), 190, 250),
            span(5, Some(1), 300, 400),
        ];
        let refs: Vec<&Span> = children.iter().collect();
        assert_eq!(exclusive_ns(&parent, &refs), 100 - 50 - 10);
        // A child inside another child (a nested interval) is not subtracted twice either.
        let nested = [span(2, Some(1), 120, 180), span(3, Some(1), 130, 140)];
        let refs: Vec<&Span> = nested.iter().collect();
        assert_eq!(exclusive_ns(&parent, &refs), 40);
        assert_eq!(exclusive_ns(&parent, &[]), 100);
    }

    #[test]
    fn a_hop_sums_its_spans_and_starts_at_its_first() {
        let mut a = span(1, None, 1_000, 2_000);
        let mut b = span(2, Some(1), 1_200, 1_500);
        let mut c = span(3, None, 3_000, 3_100);
        (a.hop, b.hop, c.hop) = (0, 1, 1);
        let t = Trace {
            spans: vec![a, b, c],
        };

        let times = t.hop_times();

        assert_eq!(
            times[&0],
            HopTime {
                exclusive_ns: 700,
                offset_ns: 0
            }
        );
        assert_eq!(
            times[&1],
            HopTime {
                exclusive_ns: 400,
                offset_ns: 200
            }
        );
        assert_eq!((t.start_ns(), t.end_ns()), (1_000, 3_100));
    }
}

//! How live the app is: the derived layer on the demo's 4096×4096 tensor, timed from one
//! settings change to new metrics on screen, to every plot, and to all four calibrators'
//! thresholds in the legend — the way the UI would see them, polling once a millisecond.
//!
//! Run with `cargo bench --bench frame` (release). BENCHMARKS.md records the figures; nothing
//! here is asserted.

// A benchmark's output is its report: it prints the table BENCHMARKS.md records.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use quantscope::app::derived::{Derived, FrameView};
use quantscope::app::jobs::Runner;
use quantscope::app::settings::Settings;
use quantscope::app::state::{AppState, Command, Tab};
use quantscope::quant::{Granularity, QuantConfig};

/// Polls the derived layer until `done` holds for the view (or a minute passes).
fn until(
    derived: &mut Derived,
    state: &mut AppState,
    done: impl Fn(&FrameView) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        for c in derived.poll(state) {
            state.handle(c);
        }
        let view = derived.view(state);
        if done(&view) || start.elapsed() > Duration::from_secs(60) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One edit of the settings, as the controls would make it.
type Change = Box<dyn Fn(&mut QuantConfig)>;

fn legend_done(v: &FrameView) -> bool {
    v.legend.lines.len() == 4 && !v.legend.pending
}

fn main() {
    let runner = Runner::pool(None).expect("job pool");
    let background = Runner::named_pool(None, "bench-background", 1).expect("background pool");
    let mut derived = Derived::new(runner, background);
    let mut state = AppState::new(Settings::default());
    state.handle(Command::OpenDemo);
    let open = Instant::now();
    while state.model.is_none() {
        for c in derived.poll(&state) {
            state.handle(c);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("demo model generated in {:?}", open.elapsed());
    let index = state
        .model
        .as_ref()
        .and_then(|m| m.model.find("stress.dense_4096x4096.weight"))
        .expect("the demo's big tensor");
    state.handle(Command::Select(index));
    // Warm up: decode the tensor and compute everything once.
    let warm = until(&mut derived, &mut state, |v| {
        v.quant.current && v.detail.current && v.hist.current && legend_done(v)
    });
    eprintln!("first view of the 4096×4096 tensor (decode included): {warm:?}");

    println!("| change | metrics on screen | every plot | all four thresholds |");
    println!("|---|---|---|---|");
    let changes: Vec<(&str, Change)> = vec![
        ("bits 8 → 4", Box::new(|c: &mut QuantConfig| c.bits = 4)),
        ("bits 4 → 6", Box::new(|c: &mut QuantConfig| c.bits = 6)),
        (
            "per channel",
            Box::new(|c: &mut QuantConfig| c.granularity = Granularity::DEFAULT_CHANNEL),
        ),
        (
            "per group 128",
            Box::new(|c: &mut QuantConfig| c.granularity = Granularity::DEFAULT_GROUP),
        ),
        ("bits → 8", Box::new(|c: &mut QuantConfig| c.bits = 8)),
    ];
    for tab in [Tab::Error, Tab::Heatmap] {
        state.handle(Command::SetTab(tab));
        until(&mut derived, &mut state, |v| {
            v.quant.current && legend_done(v)
        });
        for (name, change) in &changes {
            let mut cfg = state.settings.quant.clone();
            change(&mut cfg);
            state.handle(Command::SetQuant(cfg));
            let start = Instant::now();
            let (mut metrics, mut plots, mut thresholds) = (None, None, None);
            while thresholds.is_none() || plots.is_none() {
                for c in derived.poll(&state) {
                    state.handle(c);
                }
                let v = derived.view(&state);
                let now = start.elapsed();
                if metrics.is_none() && v.quant.current {
                    metrics = Some(now);
                }
                let plotted = v.quant.current
                    && v.detail.current
                    && v.hist.current
                    && (tab != Tab::Heatmap || v.heat.iter().all(|h| h.overview.is_some()));
                if plots.is_none() && plotted {
                    plots = Some(now);
                }
                if thresholds.is_none() && v.quant.current && legend_done(&v) {
                    thresholds = Some(now);
                }
                if now > Duration::from_secs(60) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
            println!(
                "| {name} ({tab:?} tab) | {:.0} ms | {:.0} ms | {:.0} ms |",
                ms(metrics),
                ms(plots),
                ms(thresholds)
            );
        }
    }
}

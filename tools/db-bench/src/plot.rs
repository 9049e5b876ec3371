//! `--plot=FILE.svg`: throughput (top) and p99 latency (bottom) over time
//! from the `--report_interval_seconds` samples, one line per engine, with
//! each benchmark's start marked, so a write stall or a compaction dip is
//! visible at a glance.

use crate::error::{BenchError, Result};
use crate::reporter::Sample;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::new(format!("plot: {e}"))
}

pub fn draw(path: &Path, samples: &[Sample]) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(400);
    let mut engines: Vec<&str> = Vec::new();
    for s in samples {
        if !engines.contains(&s.engine.as_str()) {
            engines.push(&s.engine);
        }
    }
    let x_max = samples.iter().map(|s| s.secs).fold(1.0, f64::max);
    let top_axis = Axis {
        title: "Throughput",
        desc: "ops/sec",
        label: |v| crate::compare::human(*v),
    };
    let bottom_axis = Axis {
        title: "p99 latency",
        desc: "p99 (us)",
        label: |v| format!("{v:.0}"),
    };
    panel(&top, &top_axis, samples, &engines, x_max, |s| Some(s.qps))?;
    panel(&bottom, &bottom_axis, samples, &engines, x_max, |s| {
        s.p99_us
    })?;
    root.present().map_err(err)?;
    Ok(())
}

/// One panel's title and y axis.
struct Axis {
    title: &'static str,
    desc: &'static str,
    label: fn(&f64) -> String,
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    axis: &Axis,
    samples: &[Sample],
    engines: &[&str],
    x_max: f64,
    value: impl Fn(&Sample) -> Option<f64>,
) -> Result<()> {
    let y_max = samples.iter().filter_map(&value).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(axis.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc(axis.desc)
        .y_label_formatter(&axis.label)
        .draw()
        .map_err(err)?;
    for (i, engine) in engines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.engine == *engine)
            .filter_map(|s| value(s).map(|v| (s.secs, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(*engine)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    // Mark where each benchmark starts.
    let mut starts: Vec<(f64, String)> = Vec::new();
    let mut last: Option<(&str, &str)> = None;
    for s in samples {
        let label = (s.engine.as_str(), s.benchmark.as_str());
        if last != Some(label) {
            starts.push((s.secs, s.benchmark.clone()));
            last = Some(label);
        }
    }
    chart
        .draw_series(starts.iter().map(|(x, name)| {
            Text::new(
                name.clone(),
                (*x, y_max * 0.97),
                ("sans-serif", 11).into_font(),
            )
        }))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

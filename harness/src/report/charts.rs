//! The report's charts as SVG text (plotters' SVG backend; text is left to the browser's
//! fonts, so no font file is needed and nothing is fetched).

use anyhow::anyhow;
use plotters::prelude::*;

pub const SYNC_COLOR: RGBColor = RGBColor(31, 119, 180);
pub const ASYNC_COLOR: RGBColor = RGBColor(230, 110, 20);
const OTHER_COLOR: RGBColor = RGBColor(90, 90, 90);

const SIZE: (u32, u32) = (760, 300);

pub fn mode_color(mode: &str) -> RGBColor {
    match mode {
        "sync" => SYNC_COLOR,
        "async" => ASYNC_COLOR,
        _ => OTHER_COLOR,
    }
}

/// One line of a line chart.
pub struct Line {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// Lines over time (x in seconds since the run started).
pub fn lines(title: &str, y_desc: &str, lines: &[Line]) -> anyhow::Result<String> {
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max);
    let y_max = nice_max(
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_desc(y_desc)
            .y_label_formatter(&axis_label)
            .light_line_style(RGBColor(246, 246, 246))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        for line in lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| anyhow!("{e}"))?
                .label(line.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// One group of bars: one bar per category.
pub struct Bars {
    pub name: String,
    pub color: RGBColor,
    /// One value per category; `None` draws nothing.
    pub values: Vec<Option<f64>>,
}

/// Grouped bars: for each category, one bar per series side by side.
pub fn grouped_bars(
    title: &str,
    y_desc: &str,
    categories: &[String],
    series: &[Bars],
) -> anyhow::Result<String> {
    let n = categories.len().max(1);
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .fold(0.0_f64, f64::max),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..y_max)
            .map_err(|e| anyhow!("{e}"))?;
        let names: Vec<String> = categories.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_desc)
            .y_label_formatter(&axis_label)
            .light_line_style(RGBColor(246, 246, 246))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let width = 0.8 / series.len().max(1) as f64;
        for (k, s) in series.iter().enumerate() {
            let color = s.color;
            let bars = s.values.iter().enumerate().filter_map(|(i, v)| {
                let v = (*v)?;
                let x0 = i as f64 - 0.4 + k as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.92, v)],
                    color.filled(),
                ))
            });
            chart
                .draw_series(bars)
                .map_err(|e| anyhow!("{e}"))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// One segment of a stacked bar: its label (the legend's), its group (segments of one group
/// share a hue, e.g. a service's hops) and its value.
pub struct Segment {
    pub label: String,
    pub group: String,
    pub value: f64,
}

/// One bar of a stacked bar chart: its segments, in the order drawn.
pub struct StackedBar {
    pub name: String,
    pub segments: Vec<Segment>,
}

/// One hue per group of segments (Tableau's 10), in the order the groups first appear.
const GROUP_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Shades of a group's hue, from the hue itself towards white, for its labels in turn.
const SHADES: usize = 5;
const SHADE_STEP: f64 = 0.16;

/// Height of one legend line, in pixels.
const LEGEND_LINE: u32 = 18;
const LEGEND_COLUMNS: u32 = 2;

/// `color` mixed with white by `t` (0: itself, 1: white).
fn lighter(color: RGBColor, t: f64) -> RGBColor {
    let mix = |c: u8| (f64::from(c) + (255.0 - f64::from(c)) * t).round() as u8;
    RGBColor(mix(color.0), mix(color.1), mix(color.2))
}

/// Horizontal stacked bars, one per entry of `bars` (the first on top), each the sum of its
/// segments, with a legend of every segment label below, grouped: each group (a service) has
/// its hue, each of its labels a shade of it, whichever bar the label is in. A thin white
/// gap separates segments.
pub fn stacked_bars(title: &str, x_desc: &str, bars: &[StackedBar]) -> anyhow::Result<String> {
    // Groups in the order they first appear; each group's labels likewise.
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for segment in bars.iter().flat_map(|b| b.segments.iter()) {
        let i = match groups.iter().position(|(g, _)| *g == segment.group) {
            Some(i) => i,
            None => {
                groups.push((segment.group.as_str(), Vec::new()));
                groups.len() - 1
            }
        };
        if !groups[i].1.contains(&segment.label.as_str()) {
            groups[i].1.push(segment.label.as_str());
        }
    }
    let legend: Vec<(&str, RGBColor)> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, (_, labels))| {
            let hue = GROUP_COLORS[g % GROUP_COLORS.len()];
            labels
                .iter()
                .enumerate()
                .map(move |(k, label)| (*label, lighter(hue, (k % SHADES) as f64 * SHADE_STEP)))
        })
        .collect();
    let color = |label: &str| {
        legend
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(OTHER_COLOR, |(_, c)| *c)
    };
    let n = bars.len().max(1);
    let x_max = nice_max(
        bars.iter()
            .map(|b| b.segments.iter().map(|s| s.value.max(0.0)).sum::<f64>())
            .fold(0.0_f64, f64::max),
    );
    // One pixel of the plot, in the x axis' units: the gap between segments.
    let gap = x_max / f64::from(SIZE.0);
    let plot_height = 100 + 50 * n as u32;
    let legend_rows = (legend.len() as u32).div_ceil(LEGEND_COLUMNS);
    let legend_height = legend_rows * LEGEND_LINE + 12;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, plot_height + legend_height))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (plot, legend_area) = root.split_vertically(plot_height);
        let names: Vec<String> = bars.iter().map(|b| b.name.clone()).collect();
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, -0.5..(n as f64 - 0.5))
            .map_err(|e| anyhow!("{e}"))?;
        // Bar i is drawn at y = n - 1 - i, so the first is on top.
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 0.01 && i >= 0.0 && (i as usize) < n {
                    names.get(n - 1 - i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(x_desc)
            .x_label_formatter(&axis_label)
            .light_line_style(RGBColor(246, 246, 246))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        for (i, bar) in bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let mut x = 0.0;
            let mut rects = Vec::new();
            for segment in &bar.segments {
                let next = x + segment.value.max(0.0);
                // The gap only where the segment is wider than it.
                let end = if next - x > 2.0 * gap {
                    next - gap
                } else {
                    next
                };
                rects.push(Rectangle::new(
                    [(x, y - 0.3), (end, y + 0.3)],
                    color(&segment.label).filled(),
                ));
                x = next;
            }
            chart.draw_series(rects).map_err(|e| anyhow!("{e}"))?;
        }
        let column = SIZE.0 / LEGEND_COLUMNS;
        for (k, (label, c)) in legend.iter().enumerate() {
            let (col, row) = (k as u32 % LEGEND_COLUMNS, k as u32 / LEGEND_COLUMNS);
            let (x, y) = ((20 + col * column) as i32, (4 + row * LEGEND_LINE) as i32);
            legend_area
                .draw(&Rectangle::new([(x, y + 2), (x + 12, y + 12)], c.filled()))
                .map_err(|e| anyhow!("{e}"))?;
            legend_area
                .draw(&Text::new(
                    label.to_string(),
                    (x + 18, y),
                    ("sans-serif", 12),
                ))
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// `250`, `2.5`: no trailing `.0` on round numbers.
fn axis_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A round upper bound a little above `max` (at least 1).
fn nice_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let padded = max * 1.1;
    let magnitude = 10f64.powf(padded.log10().floor());
    let steps = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0];
    steps
        .iter()
        .map(|s| s * magnitude)
        .find(|v| *v >= padded)
        .unwrap_or(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let svg = lines(
            "req/s",
            "requests per second",
            &[Line {
                name: "Sync".into(),
                color: SYNC_COLOR,
                points: vec![(0.0, 10.0), (1.0, 12.0)],
            }],
        )
        .expect("draws");
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        assert!(svg.contains("Sync") && svg.contains("req/s"));
        let bars = grouped_bars(
            "CPU",
            "% of one core",
            &["gateway".into(), "order".into()],
            &[Bars {
                name: "Async".into(),
                color: ASYNC_COLOR,
                values: vec![Some(50.0), None],
            }],
        )
        .expect("draws");
        assert!(bars.contains("gateway") && bars.contains("Async"));
    }

    #[test]
    fn a_stacked_bar_has_a_segment_per_hop_and_a_shade_of_its_services_hue_per_label() {
        let segment = |label: &str, value: f64| Segment {
            label: label.into(),
            group: label.split(' ').next().unwrap_or_default().into(),
            value,
        };
        let svg = stacked_bars(
            "Where the time goes",
            "ms",
            &[
                StackedBar {
                    name: "Sync".into(),
                    segments: vec![
                        segment("order POST /api/payments", 3.0),
                        segment("payment POST /internal/payments", 5.0),
                    ],
                },
                StackedBar {
                    name: "Async".into(),
                    segments: vec![
                        segment("order POST /api/payments", 2.0),
                        segment("order process PaymentSucceeded", 4.0),
                    ],
                },
            ],
        )
        .expect("draws");
        assert!(svg.starts_with("<svg"));
        for label in [
            "Sync",
            "Async",
            "order POST /api/payments",
            "order process PaymentSucceeded",
        ] {
            assert!(svg.contains(label), "{label} missing");
        }
        // order's hops: its hue (blue) and a lighter shade of it; payment's: the next hue
        // (orange). The shared hop keeps its colour in both bars: four segments and three
        // legend boxes.
        let shade = lighter(GROUP_COLORS[0], SHADE_STEP);
        assert_eq!(shade, RGBColor(67, 141, 192));
        let count = |c: RGBColor| {
            svg.matches(&format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2))
                .count()
        };
        assert_eq!(
            (count(GROUP_COLORS[0]), count(shade), count(GROUP_COLORS[1])),
            (3, 2, 2),
            "{svg}"
        );
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(90.0), 100.0);
        assert_eq!(nice_max(1234.0), 1500.0);
    }
}

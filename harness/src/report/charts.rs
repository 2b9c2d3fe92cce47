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
    fn axis_tops_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(90.0), 100.0);
        assert_eq!(nice_max(1234.0), 1500.0);
    }
}

//! SVG line charts of a run over time (queued jobs, desired and running runners).

use std::path::Path;

use plotters::prelude::*;

/// One line: a name and its (minute, value) points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, x in minutes.
    pub points: Vec<(f64, f64)>,
}

const COLORS: [RGBColor; 5] = [
    RGBColor(220, 50, 47),
    RGBColor(38, 139, 210),
    RGBColor(133, 153, 0),
    RGBColor(211, 54, 130),
    RGBColor(181, 137, 0),
];

/// Writes the chart to `path`.
///
/// # Errors
/// The file cannot be written.
pub fn write_svg(path: &Path, title: &str, series: &[Series]) -> Result<(), String> {
    let max_x = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(1.0, f64::max);
    let max_y = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
        chart.configure_mesh().x_desc("minutes (trace time)").y_desc("count").draw()?;
        for (i, line) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?
                .label(line.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("chart {}: {e}", path.display()))
}

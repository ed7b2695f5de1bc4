//! `[quality]`: the thresholds of the data-quality report.

use serde::Deserialize;

use super::values::Invalid;
use super::QualityConfig;
use crate::error::ConfigError;

/// `[quality]`: every key optional, each a positive number (shares below 1).
pub(super) fn parse(raw: toml::Spanned<RawQuality>, invalid: Invalid<'_>) -> Result<QualityConfig, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let defaults = QualityConfig::default();
    let share = |key: &str, value: Option<f64>, default: f64| match value {
        Some(v) if !(v > 0.0 && v < 1.0) => Err(invalid(
            span.clone(),
            format!("[quality] {key} = {v}: give a share between 0 and 1, such as {default}"),
        )),
        v => Ok(v.unwrap_or(default)),
    };
    let quality = QualityConfig {
        coverage_drop: share("coverage_drop", raw.coverage_drop, defaults.coverage_drop)?,
        missing_jump: share("missing_jump", raw.missing_jump, defaults.missing_jump)?,
        stale_jump: share("stale_jump", raw.stale_jump, defaults.stale_jump)?,
        outlier_k: raw.outlier_k.unwrap_or(defaults.outlier_k),
        window: raw.window.unwrap_or(defaults.window),
        max_age_days: raw.max_age_days.unwrap_or(defaults.max_age_days),
    };
    if !(quality.outlier_k.is_finite() && quality.outlier_k > 0.0) {
        return Err(invalid(
            span,
            format!(
                "[quality] outlier_k = {}: give a positive number of robust deviations, such as 8",
                quality.outlier_k
            ),
        ));
    }
    if quality.window == 0 || quality.max_age_days == 0 {
        return Err(invalid(span, "[quality] window and max_age_days are positive whole numbers".into()));
    }
    Ok(quality)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuality {
    coverage_drop: Option<f64>,
    missing_jump: Option<f64>,
    stale_jump: Option<f64>,
    outlier_k: Option<f64>,
    window: Option<usize>,
    max_age_days: Option<u32>,
}

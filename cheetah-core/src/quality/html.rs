//! The report as one self-contained page: no script, no external file. Two heatmaps by month
//! (coverage of tables, missing share of fields) whose flagged cells link to the flagged dates
//! listed below them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use chrono::Datelike;

use super::scan::short;
use super::{Check, Metric, QualityReport};
use crate::types::TableKind;

/// Flagged dates listed per table; the rest are counted, and `--json` lists them all.
const MAX_LISTED: usize = 2000;

/// A month as `YYYY-MM`.
type Month = (i32, u32);

fn month_of(m: &Metric) -> Month {
    (m.date.year(), m.date.month())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The anchor of the first listed flag of a table (and field) in a month.
fn anchor(table: usize, field: Option<usize>, (year, month): Month) -> String {
    match field {
        Some(f) => format!("f{table}-{f}-{year}-{month:02}"),
        None => format!("t{table}-{year}-{month:02}"),
    }
}

/// A colour from green (`good` = 1) through yellow to red (0).
fn colour(good: f64) -> String {
    let good = good.clamp(0.0, 1.0);
    let (r, g) = if good > 0.5 { ((2.0 - 2.0 * good) * 230.0, 200.0) } else { (230.0, good * 2.0 * 200.0) };
    format!("#{:02x}{:02x}50", r as u8, g as u8)
}

pub(super) fn page(report: &QualityReport, title: &str) -> String {
    let months: Vec<Month> = match report.range {
        Some((first, last)) => {
            let mut months = Vec::new();
            let (mut y, mut m) = (first.year(), first.month());
            while (y, m) <= (last.year(), last.month()) {
                months.push((y, m));
                (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            }
            months
        }
        None => Vec::new(),
    };
    let (listed, unlisted) = listed_flags(report);
    let anchors: BTreeSet<String> = listed.iter().filter_map(|(_, a)| a.clone()).collect();

    let mut html = String::with_capacity(1 << 20);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    let s = &report.settings;
    let range = report.range.map_or("no cached dates".to_string(), |(a, b)| format!("{a} to {b}"));
    let _ = writeln!(
        html,
        "<p class=\"meta\">{range}. Flagged: coverage {:.0}% below the previous or typical date (the median of the previous {} dates); missing share {:.0} points above typical; stale share {:.0} points above typical; new outliers beyond {} robust deviations; asof symbols with no event in {} days.</p>",
        100.0 * s.coverage_drop,
        s.window,
        100.0 * s.missing_jump,
        100.0 * s.stale_jump,
        s.outlier_k,
        s.max_age_days
    );
    summary(&mut html, report);
    coverage_map(&mut html, report, &months, &anchors);
    missing_map(&mut html, report, &months, &anchors);
    flag_lists(&mut html, report, &listed, &unlisted);
    html.push_str("</body></html>\n");
    html
}

/// The flags listed per table, each with the anchor it carries if it is the first of its
/// month; and how many of each table's flags are not listed.
/// Each listed flag with the anchor it carries, if any.
type Listed<'a> = Vec<(&'a Metric, Option<String>)>;

fn listed_flags(report: &QualityReport) -> (Listed<'_>, BTreeMap<usize, usize>) {
    let mut flags: Vec<&Metric> = report.metrics.iter().filter(|m| m.flag.is_some()).collect();
    flags.sort_by_key(|m| (m.table, m.date, m.check, m.field));
    let mut per_table: BTreeMap<usize, usize> = BTreeMap::new();
    let mut unlisted: BTreeMap<usize, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut listed = Vec::new();
    for m in flags {
        let count = per_table.entry(m.table).or_default();
        if *count >= MAX_LISTED {
            *unlisted.entry(m.table).or_default() += 1;
            continue;
        }
        *count += 1;
        let name = anchor(m.table, m.field, month_of(m));
        listed.push((m, seen.insert(name.clone()).then_some(name)));
    }
    (listed, unlisted)
}

fn summary(html: &mut String, report: &QualityReport) {
    html.push_str(
        "<h2>Tables</h2>\n<table class=\"list\"><tr><th>table</th><th>kind</th><th>fields</th><th>dates</th>",
    );
    for check in Check::ALL {
        let _ = write!(html, "<th>{} flags</th>", check.name());
    }
    html.push_str("</tr>\n");
    for (t, table) in report.tables.iter().enumerate() {
        let metrics = report.metrics.iter().filter(|m| m.table == t);
        let dates: BTreeSet<_> = metrics.clone().map(|m| m.date).collect();
        let _ = write!(
            html,
            "<tr><td><a href=\"#t{t}\">{}</a></td><td>{:?}</td><td>{}</td><td>{}</td>",
            escape(&table.name),
            table.kind,
            table.fields.len(),
            dates.len()
        );
        for check in Check::ALL {
            let flagged = metrics.clone().filter(|m| m.check == check && m.flag.is_some()).count();
            let class = if flagged > 0 { " class=\"bad\"" } else { "" };
            let _ = write!(html, "<td{class}>{flagged}</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

fn month_header(html: &mut String, label: &str, months: &[Month]) {
    let _ = write!(html, "<tr><th class=\"row\">{label}</th>");
    for &(year, month) in months {
        let text = if month == 1 || months.len() <= 24 { format!("{year}-{month:02}") } else { String::new() };
        let _ = write!(html, "<th class=\"month\" title=\"{year}-{month:02}\">{text}</th>");
    }
    html.push_str("</tr>\n");
}

/// One heatmap cell: its colour, a tooltip, and a link when one of its dates is flagged.
fn cell(
    html: &mut String,
    good: Option<f64>,
    tip: &str,
    link: Option<String>,
    anchors: &BTreeSet<String>,
    table: usize,
) {
    let Some(good) = good else {
        html.push_str("<td class=\"none\"></td>");
        return;
    };
    match link {
        Some(target) => {
            let target = if anchors.contains(&target) { target } else { format!("t{table}") };
            let _ = write!(
                html,
                "<td class=\"flag\" style=\"background:{}\" title=\"{}\"><a href=\"#{target}\">!</a></td>",
                colour(good),
                escape(tip)
            );
        }
        None => {
            let _ = write!(html, "<td style=\"background:{}\" title=\"{}\"></td>", colour(good), escape(tip));
        }
    }
}

/// Tables × months: a daily table's lowest rows against the typical date in the month, an asof
/// table's lowest share of trading symbols with a recent event.
fn coverage_map(html: &mut String, report: &QualityReport, months: &[Month], anchors: &BTreeSet<String>) {
    html.push_str("<h2 id=\"coverage\">Coverage by month</h2>\n<p class=\"meta\">Daily tables: the month's lowest rows against the typical date. Asof tables: the lowest share of trading symbols with a recent event. A cell marked ! holds flagged dates and links to them.</p>\n<table class=\"map\">\n");
    month_header(html, "table", months);
    for (t, table) in report.tables.iter().enumerate() {
        let check = if table.kind == TableKind::Daily { Check::Coverage } else { Check::Late };
        let mut by_month: BTreeMap<Month, (f64, bool)> = BTreeMap::new();
        for m in report.metrics.iter().filter(|m| m.table == t && m.check == check) {
            let good = match check {
                Check::Coverage => m.typical.map_or(1.0, |typical| if typical > 0.0 { m.value / typical } else { 1.0 }),
                _ => m.typical.map_or(1.0, |all| if all > 0.0 { 1.0 - m.value / all } else { 1.0 }),
            };
            let entry = by_month.entry(month_of(m)).or_insert((f64::INFINITY, false));
            entry.0 = entry.0.min(good);
            entry.1 |= m.flag.is_some();
        }
        let _ = write!(html, "<tr><th class=\"row\"><a href=\"#t{t}\">{}</a></th>", escape(&table.name));
        for &month in months {
            let found = by_month.get(&month);
            let tip = found.map_or(String::new(), |(good, _)| {
                format!("{} {}-{:02}: lowest {:.1}%", table.name, month.0, month.1, 100.0 * good.min(1.0))
            });
            let link = found.filter(|(_, flagged)| *flagged).map(|_| anchor(t, None, month));
            cell(html, found.map(|(good, _)| good.min(1.0)), &tip, link, anchors, t);
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

/// Fields × months: the mean share of nulls; a field flagged for anything that month links.
fn missing_map(html: &mut String, report: &QualityReport, months: &[Month], anchors: &BTreeSet<String>) {
    html.push_str("<h2 id=\"missing\">Missing share by month</h2>\n<p class=\"meta\">The mean share of nulls of each field over the month's dates. A cell marked ! holds dates flagged as missing, stale or outliers, and links to them.</p>\n<table class=\"map\">\n");
    month_header(html, "field", months);
    let mut by_cell: BTreeMap<(usize, usize, Month), (f64, usize, bool)> = BTreeMap::new();
    for m in &report.metrics {
        let Some(field) = m.field else { continue };
        let entry = by_cell.entry((m.table, field, month_of(m))).or_insert((0.0, 0, false));
        if m.check == Check::Missing {
            entry.0 += m.value;
            entry.1 += 1;
        }
        entry.2 |= m.flag.is_some();
    }
    for (t, table) in report.tables.iter().enumerate() {
        for (f, field) in table.fields.iter().enumerate() {
            let _ = write!(html, "<tr><th class=\"row\">{}.{}</th>", escape(&table.name), escape(field));
            for &month in months {
                let found = by_cell.get(&(t, f, month)).filter(|(_, n, _)| *n > 0);
                let share = found.map(|(sum, n, _)| sum / *n as f64);
                let tip = share.map_or(String::new(), |s| {
                    format!("{}.{} {}-{:02}: {:.1}% missing", table.name, field, month.0, month.1, 100.0 * s)
                });
                let link = found.filter(|(.., flagged)| *flagged).map(|_| anchor(t, Some(f), month));
                cell(html, share.map(|s| 1.0 - s), &tip, link, anchors, t);
            }
            html.push_str("</tr>\n");
        }
    }
    html.push_str("</table>\n");
}

fn flag_lists(html: &mut String, report: &QualityReport, listed: &Listed<'_>, unlisted: &BTreeMap<usize, usize>) {
    html.push_str("<h2 id=\"flags\">Flagged dates</h2>\n");
    for (t, table) in report.tables.iter().enumerate() {
        let _ = writeln!(html, "<h3 id=\"t{t}\">{}</h3>", escape(&table.name));
        let rows: Vec<_> = listed.iter().filter(|(m, _)| m.table == t).collect();
        if rows.is_empty() {
            html.push_str("<p class=\"meta\">Nothing flagged.</p>\n");
            continue;
        }
        html.push_str("<table class=\"list\"><tr><th>date</th><th>check</th><th>field</th><th>value</th><th>typical</th><th>why</th></tr>\n");
        for (m, name) in rows {
            let id = name.as_ref().map_or(String::new(), |n| format!(" id=\"{n}\""));
            let field = m.field.map_or(String::new(), |f| escape(&table.fields[f]));
            let _ = writeln!(
                html,
                "<tr{id}><td>{}</td><td>{}</td><td>{field}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                m.date,
                m.check.name(),
                short(m.value),
                m.typical.map_or(String::new(), short),
                escape(m.flag.as_deref().unwrap_or(""))
            );
        }
        html.push_str("</table>\n");
        if let Some(more) = unlisted.get(&t) {
            let _ = writeln!(html, "<p class=\"meta\">{more} more flagged metrics are not listed; <code>cheetah quality --json</code> lists them all.</p>");
        }
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px;margin-top:20px}\
.meta{color:#555;max-width:70em}\
table.list{border-collapse:collapse}table.list td,table.list th{border:1px solid #ddd;padding:2px 8px;text-align:left}\
table.list td.bad{background:#f8d0c8;font-weight:bold}\
table.map{border-collapse:collapse;font-size:11px}\
table.map td{width:12px;min-width:12px;height:14px;padding:0;border:1px solid #fff;text-align:center}\
table.map td.none{background:#eee}\
table.map td.flag{outline:2px solid #000;outline-offset:-2px}\
table.map td.flag a{color:#000;text-decoration:none;font-weight:bold;display:block}\
table.map th.month{font-weight:normal;writing-mode:vertical-rl;height:56px;padding:0}\
table.map th.row{text-align:right;padding-right:6px;white-space:nowrap;font-weight:normal}\
tr:target{background:#fff3b0}";

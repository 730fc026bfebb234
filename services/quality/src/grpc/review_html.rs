//! The management review as a document an administrator puts before the council: one
//! self-contained HTML page (inline CSS, an inline SVG bar chart of the KPIs against their
//! targets, no external resource), rendered from the structured review. Every text from the
//! records is escaped.

use std::fmt::Write as _;

use unione_proto::google::r#type::Date;
use unione_proto::quality::v1 as pb;

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn date(d: Option<&Date>) -> String {
    d.map(|d| format!("{:02}/{:02}/{:04}", d.day, d.month, d.year))
        .unwrap_or_default()
}

fn outcome(code: i32) -> (&'static str, &'static str) {
    match pb::TargetStatus::try_from(code) {
        Ok(pb::TargetStatus::Met) => ("met", "Met"),
        Ok(pb::TargetStatus::WithinTolerance) => ("tolerance", "Within tolerance"),
        Ok(pb::TargetStatus::Missed) => ("missed", "Missed"),
        _ => ("none", "Not evaluated"),
    }
}

fn polarity(code: i32) -> &'static str {
    match pb::kpi::Polarity::try_from(code) {
        Ok(pb::kpi::Polarity::LowerIsBetter) => "lower is better",
        _ => "higher is better",
    }
}

fn number(v: f64) -> String {
    let rounded = (v * 100.0).round() / 100.0;
    format!("{rounded}")
}

const STYLE: &str = "body{font-family:Georgia,serif;margin:2em auto;max-width:60em;color:#222}\
h1{font-size:1.6em;border-bottom:2px solid #333}h2{font-size:1.2em;margin-top:1.6em}\
table{border-collapse:collapse;width:100%;font-size:.9em}\
th,td{border:1px solid #999;padding:.3em .5em;text-align:left}th{background:#eee}\
td.n{text-align:right}.met{color:#1a7f37}.tolerance{color:#9a6700}.missed{color:#cf222e}\
.none{color:#666}.note{font-size:.85em;color:#555}";

/// The bar chart: one bar per evaluated KPI row, its length the compared value as a share of
/// the target (capped at twice the target), with the target drawn as a line at 100%.
fn chart(rows: &[&pb::KpiReviewRow]) -> String {
    const LABEL: f64 = 220.0;
    const WIDTH: f64 = 400.0;
    const BAR: f64 = 18.0;
    const GAP: f64 = 8.0;
    let height = (BAR + GAP) * rows.len() as f64 + 30.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{w}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {height}\"><title>KPIs against their targets</title>",
        w = LABEL + WIDTH + 60.0,
    );
    for (i, row) in rows.iter().enumerate() {
        let ratio = if row.target == 0.0 {
            if row.compared_value == 0.0 { 1.0 } else { 2.0 }
        } else {
            (row.compared_value / row.target).clamp(0.0, 2.0)
        };
        let y = (BAR + GAP) * i as f64 + 10.0;
        let (class, _) = outcome(row.target_status);
        let fill = match class {
            "met" => "#2da44e",
            "tolerance" => "#d4a72c",
            "missed" => "#cf222e",
            _ => "#8c959f",
        };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{label}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{bw:.1}\" height=\"{BAR}\" fill=\"{fill}\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"11\">{value}</text>",
            ty = y + BAR - 5.0,
            label = escape(&format!("{} {}", row.kpi_id, row.period)),
            bw = ratio * WIDTH / 2.0,
            tx = LABEL + ratio * WIDTH / 2.0 + 4.0,
            value = number(row.compared_value),
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{x}\" y1=\"0\" x2=\"{x}\" y2=\"{h}\" stroke=\"#333\" stroke-dasharray=\"4 2\"/>\
         <text x=\"{x}\" y=\"{ly}\" font-size=\"11\" text-anchor=\"middle\">target</text></svg>",
        x = LABEL + WIDTH / 2.0,
        h = height - 15.0,
        ly = height - 3.0,
    );
    svg
}

/// The review as a self-contained HTML document.
pub(crate) fn render(r: &pb::ManagementReview) -> String {
    let mut h = String::new();
    let title = format!(
        "Management review {} — Comune di {}",
        r.period, r.comune_title
    );
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1>\
         <p>Period from {from} to {to}. Prepared under ISO 9001:2015 clause 9.3 (management \
         review) for the council.</p>",
        t = escape(&title),
        from = date(r.start_date.as_ref()),
        to = date(r.end_date.as_ref()),
    );

    // KPIs.
    let _ = write!(
        h,
        "<h2>1. Key performance indicators against targets</h2>\
         <p>{} met, {} within tolerance, {} missed, of {} measurements.</p>",
        r.met_count,
        r.within_tolerance_count,
        r.missed_count,
        r.kpis.len()
    );
    let evaluated: Vec<&pb::KpiReviewRow> = r
        .kpis
        .iter()
        .filter(|k| k.target_status != i32::from(pb::TargetStatus::Unspecified))
        .collect();
    if !evaluated.is_empty() {
        h.push_str(&chart(&evaluated));
    }
    h.push_str(
        "<table><thead><tr><th>KPI</th><th>Title</th><th>Period</th><th>Value</th>\
         <th>Target (tolerance)</th><th>Polarity</th><th>Outcome</th></tr></thead><tbody>",
    );
    for k in &r.kpis {
        let (class, label) = outcome(k.target_status);
        let value = if k.status == i32::from(pb::measurement::Status::Ok) {
            format!("{} {}", number(k.compared_value), escape(&k.unit))
        } else {
            "—".to_owned()
        };
        let _ = write!(
            h,
            "<tr class=\"kpi\"><td>{id}</td><td>{title}</td><td>{period}</td><td class=\"n\">{value}</td>\
             <td class=\"n\">{target} (±{tol})</td><td>{pol}</td><td class=\"{class}\">{label}</td></tr>",
            id = escape(&k.kpi_id),
            title = escape(&k.title),
            period = escape(&k.period),
            target = number(k.target),
            tol = number(k.tolerance),
            pol = polarity(k.polarity),
        );
    }
    h.push_str("</tbody></table>");

    // Surveys.
    h.push_str("<h2>2. Customer satisfaction</h2>");
    if r.surveys.is_empty() {
        h.push_str("<p>No survey.</p>");
    } else {
        h.push_str(
            "<table><thead><tr><th>Survey</th><th>Responses</th><th>Satisfaction index</th>\
             <th>NPS</th><th>Green / yellow / red</th></tr></thead><tbody>",
        );
        for survey in &r.surveys {
            let Some(s) = &survey.results else {
                continue;
            };
            let est = |e: Option<&pb::Estimate>| {
                e.map(|e| {
                    format!(
                        "{} ({}–{})",
                        number(e.value),
                        number(e.ci_low),
                        number(e.ci_high)
                    )
                })
                .unwrap_or_else(|| "—".to_owned())
            };
            let shares = if s.suppressed {
                format!("not published: fewer than {} responses", s.min_sample_size)
            } else {
                format!(
                    "{} / {} / {}",
                    est(s.green_share.as_ref()),
                    est(s.yellow_share.as_ref()),
                    est(s.red_share.as_ref())
                )
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&survey.title),
                s.response_count,
                est(s.satisfaction_index.as_ref()),
                est(s.net_promoter_score.as_ref()),
                shares
            );
        }
        h.push_str("</tbody></table><p class=\"note\">Intervals at 95% confidence.</p>");
    }

    // Complaints.
    if let Some(c) = &r.complaints {
        let _ = write!(
            h,
            "<h2>3. Complaints</h2><table><tbody>\
             <tr><th>Received</th><td class=\"n\">{}</td></tr>\
             <tr><th>Answered</th><td class=\"n\">{}</td></tr>\
             <tr><th>Overdue</th><td class=\"n\">{}</td></tr>\
             <tr><th>Acknowledged in time</th><td class=\"n\">{} % of {}</td></tr>\
             <tr><th>Answered in time</th><td class=\"n\">{} % of {}</td></tr>\
             <tr><th>Median response days</th><td class=\"n\">{}</td></tr></tbody></table>",
            c.received_count,
            c.answered_count,
            c.overdue_count,
            number(c.acknowledged_in_time_share),
            c.acknowledgement_due_count,
            number(c.answered_in_time_share),
            c.response_due_count,
            number(c.median_response_days),
        );
    }

    // Nonconformities and corrective actions.
    let _ = write!(
        h,
        "<h2>4. Nonconformities and corrective actions</h2><p>{} open nonconformities, {} \
         overdue corrective actions.</p>",
        r.open_nonconformities.len(),
        r.overdue_corrective_actions.len()
    );
    if !r.open_nonconformities.is_empty() {
        h.push_str(
            "<table><thead><tr><th>Detected</th><th>Description</th><th>Root cause</th>\
             <th>Actions</th></tr></thead><tbody>",
        );
        for n in &r.open_nonconformities {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                date(n.detection_date.as_ref()),
                escape(&n.description),
                escape(&n.root_cause),
                n.corrective_actions.len()
            );
        }
        h.push_str("</tbody></table>");
    }
    if !r.overdue_corrective_actions.is_empty() {
        h.push_str(
            "<table><thead><tr><th>Overdue action</th><th>Owner</th><th>Due</th></tr></thead><tbody>",
        );
        for a in &r.overdue_corrective_actions {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&a.action),
                escape(&a.owner_office),
                date(a.due_date.as_ref())
            );
        }
        h.push_str("</tbody></table>");
    }

    // Objectives.
    h.push_str("<h2>5. Quality objectives</h2>");
    if r.objectives.is_empty() {
        h.push_str("<p>No objective.</p>");
    } else {
        h.push_str(
            "<table><thead><tr><th>Objective</th><th>Target</th><th>Owner</th><th>Due</th>\
             <th>Status</th></tr></thead><tbody>",
        );
        for o in &r.objectives {
            let status = pb::ObjectiveStatus::try_from(o.status)
                .map(|s| s.as_str_name().trim_start_matches("OBJECTIVE_STATUS_"))
                .unwrap_or("");
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                escape(&o.title),
                number(o.target_value),
                escape(&o.owner_office),
                date(o.due_date.as_ref()),
                status,
                if o.overdue { " (overdue)" } else { "" }
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_escaped() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}

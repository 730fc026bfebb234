//! The read behind the payments desk's figures (`PaymentStatisticsService`): the payment
//! options of a comune falling due in a range of days, each with what the figures need of its
//! position and receipt (never a debtor, an IUV or a notice number), in one statement, so
//! from one snapshot. Receipts are joined on their key (comune, IUV): they have no index by
//! position, and a join on the position scans them all for every option.

use chrono::NaiveDate;
use sqlx::FromRow;
use unione_kit::{Database, Istat};

use crate::domain::PositionState;
use crate::domain::statistics::{OptionRecord, Paid};

use super::{DATE_FORMAT, decode_error};

#[derive(FromRow)]
struct OptionRow {
    installment: i64,
    due_date: String,
    amount_cents: i64,
    state: String,
    paid_cents: Option<i64>,
    payment_time: Option<i64>,
    has_full: i64,
    installment_paid: i64,
}

/// The payment options of `comune` due from `start` to `end` (both included).
pub async fn options_due(
    db: &Database,
    comune: &Istat,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<OptionRecord>, sqlx::Error> {
    let rows: Vec<OptionRow> = sqlx::query_as(
        "SELECT o.installment, o.due_date, o.amount_cents, p.state, \
         r.amount_cents AS paid_cents, r.payment_time, \
         CASE WHEN EXISTS (SELECT 1 FROM payments_payment_options f \
             WHERE f.comune = o.comune AND f.position_id = o.position_id \
             AND f.installment = 0) THEN 1 ELSE 0 END AS has_full, \
         CASE WHEN EXISTS (SELECT 1 FROM payments_payment_options i \
             JOIN payments_receipts q ON q.comune = i.comune AND q.iuv = i.iuv \
             WHERE i.comune = o.comune AND i.position_id = o.position_id \
             AND i.installment = 1) THEN 1 ELSE 0 END AS installment_paid \
         FROM payments_payment_options o \
         JOIN payments_debt_positions p ON p.comune = o.comune AND p.id = o.position_id \
         LEFT JOIN payments_receipts r ON r.comune = o.comune AND r.iuv = o.iuv \
         WHERE o.comune = $1 AND o.due_date >= $2 AND o.due_date <= $3",
    )
    .bind(comune.as_str())
    .bind(start.format(DATE_FORMAT).to_string())
    .bind(end.format(DATE_FORMAT).to_string())
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|row| {
            let due_date = NaiveDate::parse_from_str(&row.due_date, DATE_FORMAT)
                .map_err(|e| decode_error(format!("due_date `{}`: {e}", row.due_date)))?;
            let state = PositionState::from_code(&row.state)
                .ok_or_else(|| decode_error(format!("unknown state code `{}`", row.state)))?;
            Ok(OptionRecord {
                installment: row.installment != 0,
                position_has_full_option: row.has_full != 0,
                position_installment_paid: row.installment_paid != 0,
                invalidated: state == PositionState::Invalid,
                due_date,
                amount_cents: row.amount_cents,
                paid: row
                    .paid_cents
                    .zip(row.payment_time)
                    .map(|(amount_cents, payment_time)| Paid {
                        amount_cents,
                        payment_time,
                    }),
            })
        })
        .collect()
}

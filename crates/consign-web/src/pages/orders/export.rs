//! `GET /admin/orders.csv`: the filtered list as CSV, streamed page by
//! page so a large export holds one page in memory.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use consign_db::orders::{self, Order, OrderFilter};
use consign_db::{PageRequest, Scope};
use consign_domain::policy::Action;

use crate::AppState;
use crate::pages::{PageError, Staff};

use super::list::ListQuery;

/// A CSV field, quoted when it must be. Fields that a spreadsheet would run
/// as a formula get a leading apostrophe: OWASP's list, `= + - @` and the
/// TAB, CR and LF a spreadsheet skips before reading the formula.
fn csv_field(text: &str) -> String {
    let text =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

pub(super) fn csv_row(order: &Order) -> String {
    let address = &order.shipping_address;
    let cents = |m: &consign_domain::Money| format!("{}.{:02}", m.amount / 100, (m.amount % 100).abs());
    let fields = [
        order.number.clone(),
        order.id.to_string(),
        order.brand_id.to_string(),
        order.created_at.to_string(),
        order.status.to_string(),
        order.payment_status.to_string(),
        order.fulfillment_status.to_string(),
        order.customer.name.clone(),
        order.customer.email.clone(),
        address.one_line(),
        order.items.iter().map(|i| i.item.quantity).sum::<i64>().to_string(),
        order.total.currency.clone(),
        cents(&order.total),
        cents(&order.paid),
    ];
    let mut row = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    row.push_str("\r\n");
    row
}

pub(super) const CSV_HEADER: &str = "number,id,brand_id,created_at,status,payment_status,fulfillment_status,customer_name,customer_email,shipping_address,units,currency,total,paid\r\n";

/// `GET /admin/orders.csv`: the filtered list, every page, streamed 200
/// orders at a time.
pub async fn export_csv(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let filter = query.filter()?;
    if let Some(brand_id) = filter.brand_id {
        staff.caller.authorize_brand(Action::ViewCommerce, brand_id)?;
    }
    struct Cursor {
        db: consign_db::Db,
        scope: std::sync::Arc<Scope>,
        filter: OrderFilter,
        after: Option<String>,
        started: bool,
        done: bool,
    }
    let start = Cursor {
        db: state.db.clone(),
        scope: staff.caller.0.clone(),
        filter,
        after: None,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        if !cursor.started {
            cursor.started = true;
            return Some((Ok::<Bytes, std::io::Error>(Bytes::from_static(CSV_HEADER.as_bytes())), cursor));
        }
        let page = PageRequest { limit: 200, after: cursor.after.take() };
        match orders::list(&cursor.db, &cursor.scope, &cursor.filter, &page).await {
            Ok(found) => {
                let chunk: String = found.data.iter().map(csv_row).collect();
                cursor.after = found.next_cursor;
                cursor.done = cursor.after.is_none();
                Some((Ok(Bytes::from(chunk)), cursor))
            }
            Err(error) => {
                tracing::error!(error = %error, "CSV export failed part way");
                Some((Err(std::io::Error::other("export failed")), Cursor { done: true, ..cursor }))
            }
        }
    });
    Ok(csv_download(Body::from_stream(stream)))
}

/// A CSV body as the download `orders.csv`.
pub(super) fn csv_download(body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"orders.csv\""));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("\t=cmd|' /C calc'!A0"), "'\t=cmd|' /C calc'!A0");
        assert_eq!(csv_field("\r=1+1"), "\"'\r=1+1\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }
}

//! The Slack messages (Block Kit) for a failed order, built from the `OrderFailed` event alone,
//! and for a withdrawal the platform refused, from `OrderChangeRefused`.
//!
//! The seed sent `{"text": " Lambda B Failure: Order rejected:"}`; this keeps a plain `text`
//! fallback (what notifications and screen readers show) and adds the facts a trader acts on.

use serde_json::{Value, json};

use crate::events::{Change, OrderChangeRefused, OrderFailed, OrderRef};
use crate::ports::Notification;
use crate::result::FailureReason;

fn headline(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::Rejected => ":x: Order rejected",
        FailureReason::ResultsTimeout => ":hourglass: No auction results",
        FailureReason::InvalidAtPlatform => ":no_entry: Refused by the auction platform",
        FailureReason::ProcessingError => ":rotating_light: Processing failed",
    }
}

/// The deduplication key: one message per order and reason.
pub fn notification_key(event: &OrderFailed) -> String {
    format!("{}/{}", event.order.record_id, event.reason)
}

fn kept_headline(change: Change) -> &'static str {
    match change {
        Change::Cancel => ":warning: Withdrawal refused",
        Change::Amend => ":warning: Amendment refused",
    }
}

/// The facts every message shows about its order, then `extra` ones.
fn order_fields(o: &OrderRef, extra: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("Order", o.record_id.to_string()),
        ("Auction", format!("{} {}", o.market, o.delivery_date)),
        ("Zone / side", format!("{} {}", o.zone, o.side)),
        ("Portfolio", o.portfolio.clone()),
    ];
    fields.extend(extra);
    fields
}

/// A Block Kit message: header, the fields, the message, a context line.
fn blocks(
    text: &str,
    headline: &str,
    fields: &[(&str, String)],
    message: &str,
    context: String,
) -> Value {
    let fields: Vec<Value> = fields
        .iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
        .collect();
    json!({
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline}},
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": message}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}
        ]
    })
}

fn describe(o: &OrderRef) -> String {
    format!(
        "{} ({} {} {} {}, portfolio {})",
        o.record_id, o.market, o.delivery_date, o.zone, o.side, o.portfolio
    )
}

/// The message for a change the platform refused: the order stays in the auction as it holds it.
pub fn render_change_refused(event: &OrderChangeRefused) -> Notification {
    let o = &event.order;
    let message = match event.change {
        Change::Cancel => format!(
            "the platform kept the order: {}. It stays in the auction and its result will come.",
            event.reason
        ),
        Change::Amend => format!(
            "the platform refused the new body: {}. The previous body stays in the auction and its result will come.",
            event.reason
        ),
    };
    let headline = kept_headline(event.change);
    let text = format!("{headline}: {}: {message}", describe(o));
    let payload = blocks(
        &text,
        headline,
        &order_fields(o, Vec::new()),
        &message,
        format!("energy · refused at {}", event.refused_at),
    );
    Notification {
        // One message per refusal: a second refused change is news too.
        key: format!(
            "{}/{:?}Refused/{}",
            o.record_id, event.change, event.refused_at
        ),
        text,
        payload,
    }
}

/// Renders the message.
pub fn render(event: &OrderFailed) -> Notification {
    let o = &event.order;
    let text = format!(
        "{}: {}: {}",
        headline(event.reason),
        describe(o),
        event.message
    );
    let fields = order_fields(
        o,
        vec![
            ("Reason", event.reason.to_string()),
            ("Checks made", event.attempts.to_string()),
        ],
    );
    let payload = blocks(
        &text,
        headline(event.reason),
        &fields,
        &event.message,
        format!("energy · failed at {}", event.failed_at),
    );
    Notification {
        key: notification_key(event),
        text,
        payload,
    }
}

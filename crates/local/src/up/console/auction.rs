//! The auction curve: for an auction, zone and MTU, the aggregated supply and demand step
//! curves the simulated platform clears, the clearing point, and the desk's own steps with what
//! each got.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use energy_auction::clearing::{Clearing, ClearingStep, clear};
use energy_auction::sim::Book;
use energy_core::calendar::{AuctionId, MarketRules};
use energy_core::market::{Market, Side, Zone};
use energy_core::money::{Lots, PriceCents};
use energy_core::ports::Clock;
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::json;

use super::Console;
use super::html::{Nav, bad_request, enc, esc, select, time};

type Con = State<Arc<Console>>;
type Params = Query<HashMap<String, String>>;

/// What the page shows: the auction, zone, MTU and which market (coupled or the zone's own).
struct Pick {
    auction: AuctionId,
    zone: Zone,
    mtu: Timestamp,
    mtus: Vec<Timestamp>,
    alone: bool,
}

/// The choice in the query, with defaults: SDAC, tomorrow on the market clock, NL, the first MTU.
fn pick(c: &Console, q: &HashMap<String, String>) -> Result<Pick, String> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let market: Market = match get("market") {
        None => Market::Sdac,
        Some(m) => m
            .parse()
            .map_err(|()| format!("market {m:?} is not one of SDAC, IDA1, IDA2, IDA3"))?,
    };
    let today = jiff::tz::Offset::UTC
        .to_datetime(c.shared.clock.now())
        .date();
    let delivery_date: Date = match get("day") {
        None => today.tomorrow().map_err(|e| e.to_string())?,
        Some(d) => d.parse().map_err(|e| format!("day {d:?}: {e}"))?,
    };
    // The simulator makes up a market for any day; the console shows the days around its clock.
    let span = jiff::ToSpan::days(60);
    let (first, last) = (
        today.checked_sub(span).map_err(|e| e.to_string())?,
        today.checked_add(span).map_err(|e| e.to_string())?,
    );
    if delivery_date < first || delivery_date > last {
        return Err(format!(
            "day {delivery_date} is more than 60 days from the market clock's {today}"
        ));
    }
    let zone: Zone = match get("zone") {
        None => Zone::Nl,
        Some(z) => z
            .parse()
            .map_err(|()| format!("zone {z:?} is not a bidding zone"))?,
    };
    let auction = AuctionId {
        market,
        delivery_date,
    };
    let mtus = MarketRules::default()
        .mtus(auction)
        .map_err(|e| e.to_string())?;
    let mtu = match get("mtu") {
        None => *mtus.first().ok_or("the auction has no MTUs")?,
        Some(m) => {
            let t: Timestamp = m.parse().map_err(|e| format!("mtu {m:?}: {e}"))?;
            if !mtus.contains(&t) {
                return Err(format!("{t} is not an MTU of {auction}"));
            }
            t
        }
    };
    Ok(Pick {
        auction,
        zone,
        mtu,
        mtus,
        alone: match get("alone") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("alone={other:?}: true or false")),
        },
    })
}

/// `/console/auction/steps.json`: the book in the input format of `energy auction clear`.
pub async fn steps(State(c): Con, Query(q): Params) -> Response {
    let p = match pick(&c, &q) {
        Ok(p) => p,
        Err(e) => return (http::StatusCode::BAD_REQUEST, e).into_response(),
    };
    let book = c.sim.book(p.auction, p.zone, p.mtu, p.alone);
    axum::Json(json!({
        "mtus": [{"mtu": p.mtu.to_string(), "steps": book.steps}],
        "limits": book.limits,
    }))
    .into_response()
}

/// `/console/auction`.
pub async fn page(State(c): Con, Query(q): Params) -> Response {
    render(&c, &q)
}

fn render(c: &Console, q: &HashMap<String, String>) -> Response {
    let p = match pick(c, q) {
        Ok(p) => p,
        Err(e) => return bad_request(Nav::Auction, &e),
    };
    let book = c.sim.book(p.auction, p.zone, p.mtu, p.alone);
    let cleared = clear(&book.steps, book.limits);
    let mut body = format!("<h1>Auction curve</h1>{}", form(&p));
    let query = format!(
        "market={}&day={}&zone={}&mtu={}{}",
        p.auction.market,
        p.auction.delivery_date,
        enc(p.zone.as_str()),
        enc(&p.mtu.to_string()),
        if p.alone { "&alone=true" } else { "" }
    );
    let price = cleared.price.map_or_else(
        || "no price (one side is empty)".into(),
        |p| format!("{p} EUR/MWh"),
    );
    let _ = write!(
        body,
        "<p id=\"clearing\" data-price=\"{}\" data-volume=\"{}\">{} {} MTU {}: clearing price <b>{price}</b>, volume <b>{} MW</b>; {} steps from the market, {} from the desk. <a href=\"/console/auction/steps.json?{}\">The steps as JSON</a> (input of <code>energy auction clear</code>).</p>",
        cleared.price.map(|p| p.to_string()).unwrap_or_default(),
        cleared.volume,
        p.auction,
        p.zone,
        time(p.mtu),
        cleared.volume,
        book.market_steps,
        book.steps.len() - book.market_steps,
        esc(&query),
    );
    if c.sim.is_decoupled(p.zone) {
        let other = if p.alone {
            format!(
                "<a href=\"?{}\">coupled book</a>",
                esc(&query.replace("&alone=true", ""))
            )
        } else {
            format!(
                "<a href=\"?{}&amp;alone=true\">the zone's own market</a>",
                esc(&query)
            )
        };
        let _ = write!(
            body,
            "<p class=\"note\">{} is decoupled: its final result is cleared on its own market. Show {other}.</p>",
            p.zone
        );
    }
    body.push_str(&chart(&book, &cleared));
    body.push_str(&desk_table(&book, &cleared));
    super::html::layout("Auction curve", Nav::Auction, &body)
}

fn form(p: &Pick) -> String {
    let markets: Vec<String> = Market::ALL.iter().map(|m| m.to_string()).collect();
    let zones: Vec<String> = Zone::ALL.iter().map(|z| z.to_string()).collect();
    let mtus: Vec<String> = p.mtus.iter().map(|m| m.to_string()).collect();
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/console/auction\">{}<label>Delivery day <input name=\"day\" type=\"date\" value=\"{}\" required></label>{}{}<button type=\"submit\">Show</button></form>",
        select(
            "market",
            "Market",
            &markets,
            Some(&p.auction.market.to_string())
        ),
        p.auction.delivery_date,
        select("zone", "Zone", &zones, Some(p.zone.as_str())),
        select("mtu", "MTU (UTC)", &mtus, Some(&p.mtu.to_string())),
    )
}

/// The steps of one side in the order the curve draws them: supply cheapest first, demand
/// dearest first; (index in the book, step).
fn curve(book: &Book, side: Side) -> Vec<(usize, &ClearingStep)> {
    let mut steps: Vec<(usize, &ClearingStep)> = book
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.side == side)
        .collect();
    match side {
        Side::Sell => steps.sort_by_key(|(i, s)| (s.price, *i)),
        Side::Buy => steps.sort_by_key(|(i, s)| (std::cmp::Reverse(s.price), *i)),
    }
    steps
}

/// The price range a trader looks at (EUR/MWh): from the 5th percentile of every step's price
/// (weighted by quantity) to the 95th of the supply's, widened to take in the clearing price and
/// zero. Price-taking demand at the cap would otherwise flatten the part that matters.
fn price_range(steps: &[ClearingStep], price: Option<PriceCents>) -> (f64, f64) {
    let percentile = |side: Option<Side>, share: f64| -> Option<i64> {
        let mut weighted: Vec<(i64, i64)> = steps
            .iter()
            .filter(|s| side.is_none_or(|side| s.side == side))
            .map(|s| (s.price.0, s.quantity.0))
            .collect();
        weighted.sort_unstable();
        let total: i64 = weighted.iter().map(|(_, q)| q).sum();
        let mut seen = 0i64;
        for (p, q) in &weighted {
            seen += q;
            if seen as f64 >= share * total as f64 {
                return Some(*p);
            }
        }
        weighted.last().map(|(p, _)| *p)
    };
    let lo = percentile(None, 0.05).unwrap_or(0);
    let hi = percentile(Some(Side::Sell), 0.95)
        .or_else(|| percentile(None, 0.95))
        .unwrap_or(10_000);
    let (mut lo, mut hi) = (lo.min(hi), hi.max(lo));
    if let Some(p) = price {
        lo = lo.min(p.0);
        hi = hi.max(p.0);
    }
    lo = lo.min(0);
    hi = hi.max(lo + 100);
    (lo as f64 / 100.0, hi as f64 / 100.0)
}

/// Round tick values between `lo` and `hi` (about `n` of them).
fn ticks(lo: f64, hi: f64, n: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// The supply and demand step curves with the clearing point, EUR/MWh against MW.
fn chart(book: &Book, cleared: &Clearing) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 480.0, 72.0, 16.0, 16.0, 52.0);
    let supply = curve(book, Side::Sell);
    let demand = curve(book, Side::Buy);
    let total = |c: &[(usize, &ClearingStep)]| c.iter().map(|(_, s)| s.quantity.0).sum::<i64>();
    let xmax = total(&supply).max(total(&demand)).max(1) as f64 / 10.0;
    // The price range most of the volume is offered at (5th to 95th percentile by quantity),
    // the clearing price and zero included: bids at 3 000 EUR/MWh or the price limits would
    // flatten the part that matters, so steps beyond the range are drawn at its edge.
    let limits = (book.limits.min_price, book.limits.max_price);
    let (lo, hi) = price_range(&book.steps, cleared.price);
    let pad = ((hi - lo) * 0.1).max(5.0);
    let (ylo, yhi) = (lo - pad, hi + pad);
    let x = |mw: f64| left + mw / xmax * (w - left - right);
    let y = |eur: f64| {
        let eur = eur.clamp(ylo, yhi);
        top + (yhi - eur) / (yhi - ylo) * (h - top - bottom)
    };
    let eur = |p: PriceCents| p.0 as f64 / 100.0;
    let mut svg = format!(
        "<figure class=\"curve\"><svg id=\"curve\" class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"curve-title curve-desc\"><title id=\"curve-title\">Supply and demand</title><desc id=\"curve-desc\">Aggregated supply (rising) and demand (falling) step curves, price in EUR/MWh against volume in MW, with the clearing point.</desc>"
    );
    for t in ticks(ylo, yhi, 6.0) {
        let class = if t == 0.0 { "zero" } else { "grid" };
        let _ = write!(
            svg,
            "<line class=\"{class}\" x1=\"{left}\" x2=\"{}\" y1=\"{yt:.1}\" y2=\"{yt:.1}\"/><text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{t}</text>",
            w - right,
            left - 6.0,
            y(t) + 4.0,
            yt = y(t),
        );
    }
    for t in ticks(0.0, xmax, 8.0) {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{xt:.1}\" x2=\"{xt:.1}\" y1=\"{top}\" y2=\"{}\"/><text class=\"tick\" x=\"{xt:.1}\" y=\"{}\" text-anchor=\"middle\">{t}</text>",
            h - bottom,
            h - bottom + 16.0,
            xt = x(t),
        );
    }
    let _ = write!(
        svg,
        "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">volume (MW)</text><text class=\"label\" transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">price (EUR/MWh)</text>",
        left + (w - left - right) / 2.0,
        h - 8.0,
        top + (h - top - bottom) / 2.0
    );
    let mut desk = String::new();
    for (side, steps) in [("supply", &supply), ("demand", &demand)] {
        let mut path = String::new();
        let mut cum = 0.0;
        for (k, (i, s)) in steps.iter().enumerate() {
            let (x0, x1) = (cum, cum + s.quantity.0 as f64 / 10.0);
            let py = y(eur(s.price));
            if k == 0 {
                let _ = write!(path, "M{:.1} {py:.1}", x(x0));
            } else {
                let _ = write!(path, "V{py:.1}");
            }
            let _ = write!(path, "H{:.1}", x(x1));
            if *i >= book.market_steps {
                let n = i - book.market_steps + 1;
                let mid = (x(x0) + x(x1)) / 2.0;
                let _ = write!(
                    desk,
                    "<g class=\"desk {side}\" data-step=\"{id}\"><title>desk step {n}, {id}: {} {} MW at {} EUR/MWh, filled {} MW</title><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/><path d=\"M{mid:.1} {:.1} l-7 -12 h14 z\"/><text x=\"{mid:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text></g>",
                    if *side == *"supply" { "sell" } else { "buy" },
                    s.quantity,
                    s.price,
                    cleared.filled[*i],
                    x(x0),
                    x(x1),
                    py.max(top + 15.0) - 3.0,
                    (py.max(top + 15.0) - 19.0).max(11.0),
                    id = esc(&s.id),
                );
            }
            cum = x1;
        }
        let _ = write!(svg, "<path class=\"{side}\" d=\"{path}\"/>");
    }
    svg.push_str(&desk);
    if let Some(p) = cleared.price {
        let (cx, cy) = (x(cleared.volume.0 as f64 / 10.0), y(eur(p)));
        let _ = write!(
            svg,
            "<line class=\"cross\" x1=\"{left}\" x2=\"{cx:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\"/><line class=\"cross\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{cy:.1}\" y2=\"{}\"/><circle id=\"clearing-point\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"6\" data-price=\"{p}\" data-volume=\"{}\"><title>clearing point: {p} EUR/MWh, {} MW</title></circle><text class=\"point\" x=\"{:.1}\" y=\"{:.1}\">{p} EUR/MWh · {} MW</text>",
            h - bottom,
            cleared.volume,
            cleared.volume,
            (cx + 10.0).min(w - 220.0),
            cy - 10.0,
            cleared.volume,
        );
    }
    let _ = write!(
        svg,
        "</svg><figcaption><span class=\"key supply\">supply (sell, rising)</span> <span class=\"key demand\">demand (buy, falling)</span> <span class=\"key desk\">the desk's steps (numbered markers, as in the table below)</span> <span class=\"key point\">clearing point</span> <span>Steps priced beyond the chart (up to the limits, {} and {} EUR/MWh) are drawn at its edge.</span></figcaption></figure>",
        limits.0, limits.1
    );
    svg
}

/// The desk's steps in this book and what each got.
fn desk_table(book: &Book, cleared: &Clearing) -> String {
    let mut out = String::from("<h2>The desk's steps</h2>");
    if book.steps.len() == book.market_steps {
        out.push_str("<p>The desk has no order in this zone and MTU.</p>");
        return out;
    }
    out.push_str("<div class=\"table-wrap\"><table id=\"desk-steps\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Order</th><th scope=\"col\">Step</th><th scope=\"col\">Side</th><th scope=\"col\">Price EUR/MWh</th><th scope=\"col\">MW</th><th scope=\"col\">Filled MW</th><th scope=\"col\">In the money</th></tr></thead><tbody>");
    for (i, s) in book.steps.iter().enumerate().skip(book.market_steps) {
        let filled: Lots = cleared.filled[i];
        let money = match (cleared.price, s.side) {
            (Some(p), Side::Buy) => s.price >= p,
            (Some(p), Side::Sell) => s.price <= p,
            (None, _) => false,
        };
        let _ = write!(
            out,
            "<tr data-step=\"{id}\"><td>{}</td><td><a href=\"/console/orders/{}\">{}</a></td><td>{id}</td><td>{}</td><td>{}</td><td>{}</td><td>{filled}</td><td>{}</td></tr>",
            i - book.market_steps + 1,
            enc(&s.record_id),
            esc(&s.record_id),
            super::orders::name(&s.side),
            s.price,
            s.quantity,
            if money { "yes" } else { "no" },
            id = esc(&s.id),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_include_zero_when_the_range_crosses_it() {
        assert_eq!(
            ticks(-12.0, 48.0, 6.0),
            [-10.0, 0.0, 10.0, 20.0, 30.0, 40.0]
        );
        assert_eq!(
            ticks(0.0, 1000.0, 5.0),
            [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
        );
    }
}

//! What AWS bills, counted on the wire.
//!
//! [`Tap`] is an SDK interceptor put on every client a handler is wired with. For each attempt it
//! records the service and operation, the request and response body sizes, and reads the bodies
//! for the units the bill is made of:
//!
//! - DynamoDB: read request units from the size of the items answered (4 KB a unit, half for an
//!   eventually consistent read, at least one unit a request), write request units from the size
//!   of the items written (1 KB a unit, the larger of the old and the new item, twice for a
//!   transactional write), and writes to the sparse `due` index when an item enters, leaves or
//!   moves in it. The meter keeps a mirror of every item's size and index entry, learnt from the
//!   writes and reads it saw, since the bill for a replace depends on what it replaced.
//! - EventBridge PutEvents: each accepted entry in 64 KB chunks, its size as AWS counts it
//!   (`Time` 14 bytes when set, `Source`, `DetailType`, `Detail`, each `Resources` entry).
//!
//! [`LogMeter`] counts what the handlers log, as bytes and lines, behind the same tracing
//! subscriber the binaries install.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use serde_json::{Map, Value};

use crate::sizes::{Shape, index_writes, item_key, item_size, read_halves, shape, write_units};

/// PutEvents bills each 64 KB of an entry as one event.
pub const EVENT_CHUNK: u64 = 64 * 1024;

/// One operation's calls as one function made them.
#[derive(Debug, Default, Clone)]
pub struct Calls {
    pub count: u64,
    /// Answered with a 4xx or 5xx (a failed condition is one: it is billed all the same).
    pub failed: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// Billable units found in the bodies, per function.
#[derive(Debug, Default, Clone)]
pub struct Units {
    /// DynamoDB read request units, in halves (an eventually consistent read of 4 KB is one).
    pub rru_halves: u64,
    /// DynamoDB write request units on the table (transactional writes counted twice).
    pub wru: u64,
    /// DynamoDB write request units on the `due` index.
    pub index_wru: u64,
    pub event_entries: u64,
    pub event_chunks: u64,
    pub event_bytes: u64,
}

impl Units {
    pub fn add(&mut self, o: &Units) {
        self.rru_halves += o.rru_halves;
        self.wru += o.wru;
        self.index_wru += o.index_wru;
        self.event_entries += o.event_entries;
        self.event_chunks += o.event_chunks;
        self.event_bytes += o.event_bytes;
    }
}

#[derive(Debug, Default)]
struct State {
    calls: BTreeMap<(&'static str, String, String), Calls>,
    units: BTreeMap<&'static str, Units>,
    items: HashMap<String, Shape>,
    /// Sizes of the items first written (new orders), for the seed's model.
    inserted: Vec<u64>,
}

/// The counts, shared by every [`Tap`].
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<State>>);

impl Meter {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An interceptor that books calls under `who` (a function, or the scheduler).
    pub fn tap(&self, who: &'static str) -> Tap {
        Tap {
            who,
            meter: self.clone(),
        }
    }

    /// Calls by (who, service, operation).
    pub fn calls(&self) -> BTreeMap<(&'static str, String, String), Calls> {
        self.state().calls.clone()
    }

    /// Units by who.
    pub fn units(&self) -> BTreeMap<&'static str, Units> {
        self.state().units.clone()
    }

    /// Mean size of the items written new, in bytes.
    pub fn mean_inserted_item(&self) -> u64 {
        let s = self.state();
        s.inserted.iter().sum::<u64>() / (s.inserted.len() as u64).max(1)
    }

    fn record(&self, who: &'static str, service: &str, operation: &str, call: Observed<'_>) {
        let mut state = self.state();
        let calls = state
            .calls
            .entry((who, service.to_string(), operation.to_string()))
            .or_default();
        calls.count += 1;
        calls.failed += u64::from(!call.ok);
        calls.request_bytes += call.request_len;
        calls.response_bytes += call.response_len;
        let request = call.request.and_then(|b| serde_json::from_slice(b).ok());
        let response = call.response.and_then(|b| serde_json::from_slice(b).ok());
        let (Some(request), response) = (request, response) else {
            return;
        };
        let response = response.unwrap_or(Value::Null);
        let mut units = Units::default();
        match service {
            "DynamoDB" => state.dynamodb(operation, call.ok, &request, &response, &mut units),
            "EventBridge" if operation == "PutEvents" => {
                put_events(&request, &response, &mut units)
            }
            _ => {}
        }
        state.units.entry(who).or_default().add(&units);
    }
}

/// One attempt as seen on the wire.
struct Observed<'a> {
    ok: bool,
    request: Option<&'a [u8]>,
    request_len: u64,
    response: Option<&'a [u8]>,
    response_len: u64,
}

impl State {
    fn dynamodb(&mut self, op: &str, ok: bool, req: &Value, resp: &Value, u: &mut Units) {
        match op {
            "GetItem" => {
                let consistent = req["ConsistentRead"].as_bool().unwrap_or(false);
                let size = match resp["Item"].as_object() {
                    Some(item) => {
                        self.learn(item);
                        item_size(item)
                    }
                    None => 0,
                };
                u.rru_halves += read_halves(size, consistent);
            }
            "Query" => {
                let consistent = req["ConsistentRead"].as_bool().unwrap_or(false);
                let size = resp["Items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(Value::as_object)
                            .map(item_size)
                            .sum()
                    })
                    .unwrap_or(0);
                u.rru_halves += read_halves(size, consistent);
            }
            "PutItem" => {
                if let Some(item) = req["Item"].as_object() {
                    self.write(item, ok, 1, u);
                }
            }
            "TransactWriteItems" => {
                for t in req["TransactItems"].as_array().into_iter().flatten() {
                    if let Some(item) = t["Put"]["Item"].as_object() {
                        self.write(item, ok, 2, u);
                    }
                }
            }
            "UpdateItem" => {
                // Only the sweeper's claim updates: `due_at` moves (the index entry is deleted and
                // put again) and `sweeps` grows by a few bytes.
                let key = req["Key"]["record_id"]["S"].as_str().unwrap_or_default();
                let old = self.items.get(key).map_or(1, |s| s.size);
                u.wru += write_units(old + 8);
                if ok {
                    u.index_wru += 2;
                }
            }
            _ => {}
        }
    }

    /// A put of `item` (`factor` 2 in a transaction): the larger of the old and the new item,
    /// and the index writes it causes when it is applied.
    fn write(&mut self, item: &Map<String, Value>, ok: bool, factor: u64, u: &mut Units) {
        let new = shape(item);
        let key = item_key(item);
        let old = self.items.get(&key).cloned();
        u.wru += factor * write_units(new.size.max(old.as_ref().map_or(0, |o| o.size)));
        if !ok {
            return;
        }
        if old.is_none() {
            self.inserted.push(new.size);
        }
        u.index_wru += index_writes(
            old.as_ref().and_then(|o| o.index.as_ref()),
            new.index.as_ref(),
        );
        self.items.insert(key, new);
    }

    fn learn(&mut self, item: &Map<String, Value>) {
        self.items.insert(item_key(item), shape(item));
    }
}

/// The entries PutEvents accepted, their sizes as AWS counts them and their 64 KB chunks.
fn put_events(req: &Value, resp: &Value, u: &mut Units) {
    let results = resp["Entries"].as_array();
    for (i, e) in req["Entries"].as_array().into_iter().flatten().enumerate() {
        let accepted = results
            .and_then(|r| r.get(i))
            .is_some_and(|r| r.get("EventId").is_some());
        if !accepted {
            continue;
        }
        let text = |k: &str| e[k].as_str().map_or(0, str::len) as u64;
        let resources: u64 = e["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|r| r.len() as u64)
            .sum();
        let time = if e.get("Time").is_some() { 14 } else { 0 };
        let size = time + text("Source") + text("DetailType") + text("Detail") + resources;
        u.event_entries += 1;
        u.event_chunks += size.div_ceil(EVENT_CHUNK).max(1);
        u.event_bytes += size;
    }
}

/// Books every attempt of a client's calls under one name.
#[derive(Debug)]
pub struct Tap {
    who: &'static str,
    meter: Meter,
}

/// The request of the attempt under way, kept between the two hooks.
#[derive(Debug, Clone)]
struct Sent {
    body: Option<Vec<u8>>,
    len: u64,
}

impl Storable for Sent {
    type Storer = StoreReplace<Sent>;
}

fn content_length(headers: &aws_smithy_runtime_api::http::Headers) -> u64 {
    headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Intercept for Tap {
    fn name(&self) -> &'static str {
        "energy-cost-meter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let body = request.body().bytes().map(<[u8]>::to_vec);
        let len = body
            .as_ref()
            .map_or_else(|| content_length(request.headers()), |b| b.len() as u64);
        cfg.interceptor_state().store_put(Sent { body, len });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let (service, operation) = (meta.service().to_string(), meta.name().to_string());
        let sent = cfg.load::<Sent>();
        let response = context.response();
        let body = response.body().bytes();
        let call = Observed {
            ok: response.status().as_u16() < 400,
            request: sent.and_then(|s| s.body.as_deref()),
            request_len: sent.map_or(0, |s| s.len),
            response: body,
            response_len: body
                .map_or_else(|| content_length(response.headers()), |b| b.len() as u64),
        };
        self.meter.record(self.who, &service, &operation, call);
        Ok(())
    }
}

/// Counts the bytes and lines the handlers log (what CloudWatch Logs would ingest from them).
#[derive(Debug, Clone, Default)]
pub struct LogMeter {
    bytes: Arc<AtomicU64>,
    lines: Arc<AtomicU64>,
}

impl LogMeter {
    /// (bytes, lines) so far.
    pub fn read(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.lines.load(Ordering::Relaxed),
        )
    }
}

/// One write of the subscriber, counted and dropped.
pub struct LogSink(LogMeter);

impl io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
        self.0.lines.fetch_add(lines, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogMeter {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        LogSink(self.clone())
    }
}

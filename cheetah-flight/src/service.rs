//! The Flight service: `GetFlightInfo` plans a read and splits it into date-range endpoints,
//! `DoGet` reads one ticket and streams it, `DoAction` answers `fields`, `status`, `universes`,
//! `snapshots` and `location`. Reads go through [`Reads`]. The one write, `DoPut` of a frame into
//! a local table, goes through [`Writes`], which the service holds only when `[flight]
//! write_token` is set, and only for a call that presented that token; `DoExchange` is refused.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket as FlightTicket,
};
use cheetah_core::{
    Cache, Error, Outline, QueryResult, Request, Snapshot, Status as StoreStatus, Universe, WriteReport,
};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::json;
use tokio::sync::Semaphore;
use tonic::{Request as Call, Response, Status, Streaming};

use crate::auth::Role;
use crate::encode::{Contexts, Encoded};
use crate::errors::{bad_ticket, invalid, status_of};
use crate::ticket::Ticket;
use crate::wire::{self, Part};

/// Largest message the server sends: tonic's default receive limit is 4 MiB, and every client
/// takes 2 MiB with room for the message's framing.
pub const MAX_MESSAGE_BYTES: usize = 2 << 20;

/// What the service may do with the cache: read it. Nothing else is reachable from a call.
pub trait Reads: Send + Sync + 'static {
    /// The read's outline, without reading it.
    fn outline(&self, request: &Request) -> Result<Outline, Error>;
    /// The read.
    fn get(&self, request: &Request) -> Result<QueryResult, Error>;
    /// What the store holds.
    fn status(&self) -> Result<StoreStatus, Error>;
    /// The configured universes, as the last update stored them.
    fn universes(&self) -> Result<Vec<(String, Option<Universe>)>, Error>;
    /// The snapshots.
    fn snapshots(&self) -> Result<Vec<Snapshot>, Error>;
    /// The config file and the store's identity, for a client on this machine to open them.
    fn location(&self) -> Result<(std::path::PathBuf, String), Error>;
}

impl Reads for Cache {
    fn outline(&self, request: &Request) -> Result<Outline, Error> {
        Cache::outline(self, request)
    }

    fn get(&self, request: &Request) -> Result<QueryResult, Error> {
        Cache::get(self, request)
    }

    fn status(&self) -> Result<StoreStatus, Error> {
        Cache::status(self)
    }

    fn universes(&self) -> Result<Vec<(String, Option<Universe>)>, Error> {
        Cache::universes(self)
    }

    fn snapshots(&self) -> Result<Vec<Snapshot>, Error> {
        Cache::snapshots(self)
    }

    fn location(&self) -> Result<(std::path::PathBuf, String), Error> {
        let config = &self.config().path;
        let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.clone());
        Ok((config, self.identity()?))
    }
}

/// What a call with the write token may do: write a frame into a local table.
pub trait Writes: Send + Sync + 'static {
    /// [`Cache::write`].
    fn write(&self, table: &str, batches: Vec<RecordBatch>, date: &str, symbol: &str) -> Result<WriteReport, Error>;
}

impl Writes for Cache {
    fn write(&self, table: &str, batches: Vec<RecordBatch>, date: &str, symbol: &str) -> Result<WriteReport, Error> {
        Cache::write(self, table, batches, date, symbol)
    }
}

/// How the service bounds its work.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most bytes one read (a `GetFlightInfo` or one ticket) may return.
    pub max_read_bytes: u64,
    /// About how many bytes each endpoint of a read holds.
    pub part_bytes: u64,
    /// The most endpoints of one read.
    pub max_parts: usize,
    /// Streams built or sent at once; later calls wait for one to end.
    pub streams: usize,
}

impl Limits {
    /// The limits of `[flight]` on a box with `cores` cores.
    pub fn new(config: &cheetah_core::FlightConfig, cores: usize) -> Self {
        Self {
            max_read_bytes: config.max_read_bytes,
            part_bytes: config.part_bytes,
            max_parts: 64,
            streams: (2 * cores).max(4),
        }
    }
}

/// The Flight service over a cache.
pub struct Service<R: Reads> {
    reads: Arc<R>,
    writes: Option<Arc<dyn Writes>>,
    limits: Limits,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    contexts: Arc<Contexts>,
}

/// Streams under way and ended, for `status`.
#[derive(Default)]
struct Counters {
    active: AtomicUsize,
    sent: AtomicU64,
    abandoned: AtomicU64,
}

impl<R: Reads> Service<R> {
    /// A service reading `reads` within `limits`, and writing local tables through `writes`
    /// for calls with the write token.
    pub fn new(reads: Arc<R>, writes: Option<Arc<dyn Writes>>, limits: Limits) -> Self {
        let permits = Arc::new(Semaphore::new(limits.streams));
        Self { reads, writes, permits, limits, counters: Arc::default(), contexts: Arc::default() }
    }

    /// Runs a read of the cache on the blocking pool, so the runtime's threads keep serving.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&R) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let reads = self.reads.clone();
        tokio::task::spawn_blocking(move || work(&reads))
            .await
            .map_err(|e| Status::internal(format!("the read failed on the server: {e}")))?
    }

    /// The outline of `ticket`, refused if it would read more than the limit.
    fn checked_outline(reads: &R, ticket: &Ticket, limits: &Limits) -> Result<Outline, Status> {
        let outline = reads.outline(&ticket.request()).map_err(|e| status_of(&e))?;
        let bytes: u64 = outline.dates.iter().map(|(_, rows)| rows * outline.row_bytes()).sum();
        if bytes > limits.max_read_bytes {
            return Err(invalid(format!(
                "this read is about {} over {} dates, more than the server's limit of {} per read ([flight] max_read); narrow the dates, the fields or the symbols, or split the read",
                human(bytes),
                outline.dates.len(),
                human(limits.max_read_bytes)
            )));
        }
        Ok(outline)
    }

    fn action_result(value: &serde_json::Value) -> Response<BoxStream<'static, Result<arrow_flight::Result, Status>>> {
        let body = arrow_flight::Result { body: value.to_string().into_bytes().into() };
        Response::new(stream::iter([Ok(body)]).boxed())
    }
}

fn ticket_of_descriptor(descriptor: &FlightDescriptor) -> Result<Ticket, Status> {
    if descriptor.r#type() != DescriptorType::Cmd {
        return Err(invalid(
            "send a CMD descriptor whose command is the ticket's JSON; PATH descriptors name nothing here".into(),
        ));
    }
    Ticket::parse(&descriptor.cmd).map_err(|e| bad_ticket(&e))
}

/// Where a put writes: the local table and its key columns.
struct PutTarget {
    table: String,
    date: String,
    symbol: String,
}

impl PutTarget {
    fn of(descriptor: Option<&FlightDescriptor>) -> Result<Self, Status> {
        let Some(descriptor) = descriptor else {
            return Err(invalid("the put's first message has no descriptor: name the local table in it".into()));
        };
        let named = |table: String| Self { table, date: "date".into(), symbol: "symbol".into() };
        match descriptor.r#type() {
            DescriptorType::Path => match descriptor.path.as_slice() {
                [table] => Ok(named(table.clone())),
                _ => Err(invalid("a PATH descriptor of a put holds one element: the local table".into())),
            },
            _ => {
                let value: serde_json::Value = serde_json::from_slice(&descriptor.cmd)
                    .map_err(|e| invalid(format!("the put's CMD is not JSON ({e}); send {{\"table\": \"name\"}}")))?;
                let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
                let table = text("table").ok_or_else(|| invalid("the put's CMD names no \"table\"".into()))?;
                Ok(Self {
                    date: text("date").unwrap_or_else(|| "date".into()),
                    symbol: text("symbol").unwrap_or_else(|| "symbol".into()),
                    table,
                })
            }
        }
    }
}

fn human(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// The endpoints' app metadata: each part's dates and estimated rows.
fn part_metadata(part: &Part) -> Vec<u8> {
    json!({"first": part.first.to_string(), "last": part.last.to_string(), "rows": part.rows}).to_string().into_bytes()
}

#[tonic::async_trait]
impl<R: Reads> FlightService for Service<R> {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;

    /// The token was checked before the call reached here; the handshake only echoes.
    async fn handshake(
        &self,
        request: Call<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Role::admit_read(&request)?;
        let mut incoming = request.into_inner();
        let payload = match incoming.next().await {
            Some(Ok(first)) => first.payload,
            Some(Err(e)) => return Err(e),
            None => Default::default(),
        };
        let reply = HandshakeResponse { protocol_version: 0, payload };
        Ok(Response::new(stream::iter([Ok(reply)]).boxed()))
    }

    /// Reads are named by tickets, not listed: `DoAction` `fields` lists what is cached.
    async fn list_flights(&self, request: Call<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        Role::admit_read(&request)?;
        Ok(Response::new(stream::empty().boxed()))
    }

    async fn get_flight_info(&self, request: Call<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        Role::admit_read(&request)?;
        let descriptor = request.into_inner();
        let ticket = ticket_of_descriptor(&descriptor)?;
        let limits = self.limits;
        let planned = ticket.clone();
        let outline = self.blocking(move |reads| Self::checked_outline(reads, &planned, &limits)).await?;
        let schema = wire::schema(&outline, ticket.dates);
        let max_parts = if ticket.splits() { limits.max_parts } else { 1 };
        let parts = wire::split(&outline, limits.part_bytes, max_parts);
        // Every endpoint reads the version planned, whatever `serve` commits between them.
        let pinned = ticket.pinned(outline.version.number);
        let endpoints = parts.iter().map(|part| {
            FlightEndpoint::new()
                .with_ticket(FlightTicket::new(pinned.over(part.first, part.last).to_bytes()))
                .with_app_metadata(part_metadata(part))
        });
        let covered = outline.covered.map(|(s, e)| [s.to_string(), e.to_string()]);
        let metadata = json!({
            "covered": covered,
            "rows": parts.iter().map(|p| p.rows).sum::<u64>(),
            "bytes": parts.iter().map(|p| p.bytes).sum::<u64>(),
            "version": outline.version.number,
            "known_at": outline.version.committed.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "snapshot": ticket.snapshot,
        });
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
            .with_descriptor(descriptor)
            .with_endpoints(endpoints.collect())
            .with_ordered(true)
            .with_total_records(-1)
            .with_total_bytes(-1)
            .with_app_metadata(metadata.to_string().into_bytes());
        Ok(Response::new(info))
    }

    async fn poll_flight_info(&self, _: Call<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("reads are planned at once: call GetFlightInfo"))
    }

    async fn get_schema(&self, request: Call<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        Role::admit_read(&request)?;
        let ticket = ticket_of_descriptor(request.get_ref())?;
        let dates = ticket.dates;
        let outline = self.blocking(move |reads| reads.outline(&ticket.request()).map_err(|e| status_of(&e))).await?;
        let schema = wire::schema(&outline, dates);
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let result = SchemaAsIpc::new(&schema, &options)
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(format!("cannot encode the schema: {e}")))?;
        Ok(Response::new(result))
    }

    async fn do_get(&self, request: Call<FlightTicket>) -> Result<Response<Self::DoGetStream>, Status> {
        Role::admit_read(&request)?;
        let peer = request.remote_addr().map_or_else(|| "unknown".to_string(), |a| a.to_string());
        let ticket = Ticket::parse(&request.get_ref().ticket).map_err(|e| bad_ticket(&e))?;
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| Status::unavailable("the server is stopping"))?;
        let started = Instant::now();
        let limits = self.limits;
        let dates = ticket.dates;
        let batch = self
            .blocking(move |reads| {
                let outline = Self::checked_outline(reads, &ticket, &limits)?;
                let result = reads.get(&ticket.request()).map_err(|e| status_of(&e))?;
                wire::conform(&result.batch, &wire::schema(&outline, dates))
                    .map_err(|e| Status::internal(format!("the read does not match its outline: {e}")))
            })
            .await?;
        let assembled = started.elapsed();
        let guard = StreamGuard::new(
            self.counters.clone(),
            peer,
            batch.num_rows(),
            batch.get_array_memory_size(),
            started,
            permit,
        );
        tracing::debug!(rows = batch.num_rows(), ms = assembled.as_millis() as u64, "read assembled");
        // Cut here by the rows' bytes: arrow-flight's encoder would cut by the buffers' capacity.
        let messages = wire::messages(&batch, MAX_MESSAGE_BYTES);
        let data = stream::iter(Encoded::new(batch.schema_ref(), messages, self.contexts.clone()));
        let stream = GuardedStream { inner: data, guard: Some(guard) };
        Ok(Response::new(stream.boxed()))
    }

    /// A frame into a local table: the descriptor names the table (a one-element PATH, or a
    /// CMD `{"table": ..., "date": ..., "symbol": ...}`), the stream carries the batches, and
    /// the one result is the write's report as JSON.
    async fn do_put(&self, request: Call<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        let (Role::Write, Some(writes)) = (Role::of(&request), self.writes.clone()) else {
            return Err(read_only());
        };
        let mut incoming = request.into_inner();
        let first = match incoming.next().await {
            Some(first) => first?,
            None => return Err(invalid("the put sent no data: send the frame's schema and batches".into())),
        };
        let target = PutTarget::of(first.flight_descriptor.as_ref())?;
        let data = stream::iter([Ok(first)]).chain(incoming).map(|item| item.map_err(FlightError::from));
        let mut decoded = FlightRecordBatchStream::new_from_flight_data(data);
        let (mut batches, mut bytes) = (Vec::new(), 0u64);
        while let Some(batch) = decoded.next().await {
            let batch = batch.map_err(|e| invalid(format!("the put's data does not decode: {e}")))?;
            bytes += batch.get_array_memory_size() as u64;
            if bytes > self.limits.max_read_bytes {
                return Err(invalid(format!(
                    "this frame is over {}, the server's limit per call ([flight] max_read); write it in parts, a range of dates each",
                    human(self.limits.max_read_bytes)
                )));
            }
            batches.push(batch);
        }
        let report =
            tokio::task::spawn_blocking(move || writes.write(&target.table, batches, &target.date, &target.symbol))
                .await
                .map_err(|e| Status::internal(format!("the write failed on the server: {e}")))?
                .map_err(|e| status_of(&e))?;
        tracing::info!(table = %report.table, dates = report.dates, rows = report.rows, "a local write over Flight");
        let body = serde_json::to_vec(&report).expect("reports serialize");
        Ok(Response::new(stream::iter([Ok(PutResult { app_metadata: body.into() })]).boxed()))
    }

    async fn do_exchange(&self, _: Call<Streaming<FlightData>>) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(read_only())
    }

    async fn do_action(&self, request: Call<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        Role::admit_read(&request)?;
        let action = request.into_inner();
        if !["fields", "status", "universes", "snapshots", "location"].contains(&action.r#type.as_str()) {
            return Err(invalid(format!(
                "no action {:?}; the actions are `fields`, `status`, `universes`, `snapshots` and `location`",
                action.r#type
            )));
        }
        if action.r#type == "location" {
            let (config, identity) = self.blocking(|reads| reads.location().map_err(|e| status_of(&e))).await?;
            return Ok(Self::action_result(&json!({
                "config": config,
                "identity": identity,
                "boot_id": boot_id(),
            })));
        }
        if action.r#type == "universes" {
            let universes = self.blocking(|reads| reads.universes().map_err(|e| status_of(&e))).await?;
            return Ok(Self::action_result(&universes_of(&universes)));
        }
        if action.r#type == "snapshots" {
            let snapshots = self.blocking(|reads| reads.snapshots().map_err(|e| status_of(&e))).await?;
            return Ok(Self::action_result(&serde_json::to_value(snapshots).expect("snapshots serialize")));
        }
        let status = self.blocking(|reads| reads.status().map_err(|e| status_of(&e))).await?;
        match action.r#type.as_str() {
            "fields" => Ok(Self::action_result(&fields_of(&status))),
            _ => {
                let mut value = serde_json::to_value(&status).map_err(|e| Status::internal(e.to_string()))?;
                value["flight"] = json!({
                    "streams_active": self.counters.active.load(Ordering::SeqCst),
                    "streams_sent": self.counters.sent.load(Ordering::SeqCst),
                    "streams_abandoned": self.counters.abandoned.load(Ordering::SeqCst),
                });
                Ok(Self::action_result(&value))
            }
        }
    }

    async fn list_actions(&self, request: Call<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Role::admit_read(&request)?;
        let actions = [
            ("fields", "The cached fields: table, type, first and last date, dates, rows, bytes (JSON)"),
            ("status", "What the store holds per table and field, and the server's streams (JSON)"),
            ("universes", "Each configured universe and its membership intervals, as last read (JSON)"),
            ("snapshots", "The snapshots: name, store version, when made, note (JSON)"),
            (
                "location",
                "The config file, the store's identity and this machine's boot id, for a client on the same machine to read the store and shared layer directly (JSON)",
            ),
        ];
        let actions = actions.map(|(name, about)| Ok(ActionType { r#type: name.into(), description: about.into() }));
        Ok(Response::new(stream::iter(actions).boxed()))
    }
}

/// This boot of this machine's kernel, which a client compares with its own to know it runs on
/// the same machine; `None` where the kernel does not say.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|id| id.trim().to_string())
}

fn read_only() -> Status {
    Status::permission_denied(
        "writing needs the server's write token ([flight] write_token), passed as cheetah.connect(url, token=<write token>); a server without one takes no writes",
    )
}

/// Each universe with its intervals `[symbol, start, end]` (`end` null while a member), or
/// `read: null` before an update has read it.
fn universes_of(universes: &[(String, Option<Universe>)]) -> serde_json::Value {
    let listed: Vec<serde_json::Value> = universes
        .iter()
        .map(|(name, universe)| {
            let read = universe.as_ref().map(|u| {
                let mut read = serde_json::to_value(u.summary()).expect("a summary serializes");
                read["spans"] = u.intervals.iter().map(|i| json!([i.symbol, i.start, i.end])).collect();
                read
            });
            json!({"name": name, "read": read})
        })
        .collect();
    serde_json::Value::Array(listed)
}

/// One row per cached field, as `cheetah.Cache.fields()` lists them.
fn fields_of(status: &StoreStatus) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = status
        .tables
        .iter()
        .flat_map(|t| {
            t.fields.iter().map(move |f| {
                json!({"field": f.name, "table": t.name, "type": f.dtype, "first": f.first, "last": f.last,
                       "dates": f.dates, "rows": f.rows, "bytes": f.bytes})
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

/// Counts a stream while it lives, and logs how it ended. Dropping it (the stream ended, or the
/// client went away and tonic dropped the stream) frees the read's memory and its permit.
struct StreamGuard {
    counters: Arc<Counters>,
    peer: String,
    rows: usize,
    bytes: usize,
    started: Instant,
    finished: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl StreamGuard {
    fn new(
        counters: Arc<Counters>,
        peer: String,
        rows: usize,
        bytes: usize,
        started: Instant,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        counters.active.fetch_add(1, Ordering::SeqCst);
        Self { counters, peer, rows, bytes, started, finished: false, _permit: permit }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.counters.active.fetch_sub(1, Ordering::SeqCst);
        let ms = self.started.elapsed().as_millis() as u64;
        if self.finished {
            self.counters.sent.fetch_add(1, Ordering::SeqCst);
            tracing::info!(peer = %self.peer, rows = self.rows, bytes = self.bytes, ms, "sent a read");
        } else {
            self.counters.abandoned.fetch_add(1, Ordering::SeqCst);
            tracing::info!(peer = %self.peer, rows = self.rows, ms, "the client left mid-stream; its read is freed");
        }
    }
}

/// A stream that holds its [`StreamGuard`] until it ends or is dropped.
struct GuardedStream<S> {
    inner: S,
    guard: Option<StreamGuard>,
}

impl<S: futures::Stream + Unpin> futures::Stream for GuardedStream<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let std::task::Poll::Ready(None) = polled {
            if let Some(mut guard) = self.guard.take() {
                guard.finished = true;
            }
        }
        polled
    }
}

//! Arrow Flight with real processes: `cheetah serve` with `[flight]` and clients of the
//! `arrow-flight` crate over loopback, some in processes of their own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow_flight::{Action, FlightClient, FlightDescriptor, FlightInfo, Ticket};
use cheetah_core::{Cache, Config, DateLayout, Request};
use futures::{StreamExt, TryStreamExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::Code;

use crate::harness::{self, assert_result_matches, cheetah_command, day, market, model, wait_for, Db, Kind, FIELDS};
use crate::service::{read_log, serve, terminate, Daemon};

const SYMBOLS: u32 = 40;
const DAYS: u32 = 40;
const SEED: u64 = 47;
const TOKEN: &str = "tok-3f1c9a7e5b";
const LOCAL: &str = "\n[flight]\nlisten = \"127.0.0.1:0\"\n";

/// The address `serve` logged it listens on.
fn flight_addr(log: &Path) -> String {
    let mut addr = None;
    let found = wait_for(20.0, || {
        addr = read_log(log)
            .lines()
            .find(|l| l.contains("serving reads over Arrow Flight"))
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("addr=")).map(str::to_string));
        addr.is_some()
    });
    assert!(found, "serve never listened:\n{}", read_log(log));
    addr.expect("found")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn client(addr: &str, token: Option<&str>) -> FlightClient {
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect().await.expect("connect");
    with_token(FlightClient::new(channel), token)
}

fn with_token(mut client: FlightClient, token: Option<&str>) -> FlightClient {
    if let Some(token) = token {
        client.add_header("authorization", &format!("Bearer {token}")).expect("header");
    }
    client
}

fn ticket(fields: &[&str], extra: &str) -> Vec<u8> {
    let fields: Vec<String> = fields.iter().map(|f| format!("\"{f}\"")).collect();
    format!(r#"{{"fields": [{}], "start": "2000-01-01", "end": "2100-01-01"{extra}}}"#, fields.join(", ")).into_bytes()
}

/// Every endpoint of the read `ticket` names, fetched one after another, as one batch.
async fn read_flight(client: &mut FlightClient, ticket: Vec<u8>) -> Result<(FlightInfo, RecordBatch), tonic::Status> {
    let info = client.get_flight_info(FlightDescriptor::new_cmd(ticket)).await.map_err(status)?;
    let schema = std::sync::Arc::new(info.clone().try_decode_schema().expect("schema"));
    let mut batches = Vec::new();
    for endpoint in &info.endpoint {
        let part = client.do_get(endpoint.ticket.clone().expect("ticket")).await.map_err(status)?;
        batches.extend(part.try_collect::<Vec<_>>().await.map_err(status)?);
    }
    Ok((info, arrow::compute::concat_batches(&schema, &batches).expect("one schema")))
}

fn status(error: arrow_flight::error::FlightError) -> tonic::Status {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => tonic::Status::unknown(other.to_string()),
    }
}

/// `date` and `symbol` as plain values, so a Flight batch compares with a local one.
fn plain(batch: &RecordBatch) -> Vec<arrow::array::ArrayRef> {
    batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Dictionary(_, values) => arrow::compute::cast(c, values).expect("cast"),
            _ => c.clone(),
        })
        .collect()
}

fn seeded(name: &str, extra: &str) -> Option<(Db, Vec<harness::Row>)> {
    let db = Db::open(Kind::Sqlite, name)?;
    db.create_table();
    let rows = market(0, DAYS, SYMBOLS, SEED);
    db.insert(&rows);
    db.config(&FIELDS, extra);
    let (ok, _, stderr) = harness::cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    Some((db, rows))
}

fn local(db: &Db) -> Cache {
    Cache::builder(Config::load(&db.config_path()).expect("config")).open().expect("open")
}

#[test]
fn remote_reads_equal_local_ones_and_bad_calls_get_clear_statuses() {
    let Some((db, rows)) = seeded("flight_reads", LOCAL) else { return };
    let (daemon, log) = serve(&db, &["--no-update"]);
    let addr = flight_addr(&log);
    let cache = local(&db);
    runtime().block_on(async {
        let mut client = client(&addr, None).await;
        // The whole market, in several endpoints, equal to a local read column for column.
        let (info, batch) = read_flight(&mut client, ticket(&FIELDS, "")).await.expect("read");
        let want = harness::read_all(&cache, &FIELDS);
        assert_eq!(plain(&batch), plain(&want.batch));
        // Dates travel as a dictionary, its codes as wide as a local read's (pandas' widths).
        let (start, end) = ("2000-01-01".parse().expect("date"), "2100-01-01".parse().expect("date"));
        let every_day = Request::new(start, end, FIELDS.iter().map(|f| f.to_string()).collect());
        let local_dates = cache.get(&every_day.dates(DateLayout::Dictionary)).expect("read").batch;
        assert!(matches!(batch.column(0).data_type(), DataType::Dictionary(..)), "date travels as a dictionary");
        assert_eq!(batch.column(0).data_type(), local_dates.column(0).data_type());
        assert!(matches!(batch.column(1).data_type(), DataType::Dictionary(k, v) if **k == DataType::Int16 && **v == DataType::Utf8));
        assert_eq!(info.endpoint.len(), 1, "a small read is one endpoint");
        // Endpoints tile the dates: a symbol filter and date32 dates, through the same path.
        let extra = r#", "symbols": ["S003", "S017", "NOPE"], "dates": "date32""#;
        let (_, filtered) = read_flight(&mut client, ticket(&["close", "name"], extra)).await.expect("read");
        let request = Request::new(day(0), day(10_000), vec!["close".into(), "name".into()])
            .symbols(vec!["S003".into(), "S017".into(), "NOPE".into()]);
        assert_eq!(plain(&filtered), plain(&cache.get(&request).expect("read").batch));
        assert_eq!(filtered.column(0).data_type(), &DataType::Date32);
        assert_result_matches(
            &filtered,
            &["close", "name"],
            &model(&rows.iter().filter(|r| r.symbol == "S003" || r.symbol == "S017").cloned().collect::<Vec<_>>()),
            None,
        );

        // An unknown field: the local message, close matches included.
        let unknown = read_flight(&mut client, ticket(&["clsoe"], "")).await.unwrap_err();
        assert_eq!(unknown.code(), Code::InvalidArgument);
        assert!(unknown.message().contains("close"), "{}", unknown.message());
        assert_eq!(std::str::from_utf8(unknown.details()).unwrap(), r#"{"kind":"QueryError"}"#);
        // Hostile tickets: a clear InvalidArgument each, and the server keeps serving.
        let hostile: Vec<Vec<u8>> = vec![
            b"not json".to_vec(),
            br#"{"fields": ["close"], "start": "2020-01-01", "end": "2020-12-31", "sql": "DROP TABLE x"}"#.to_vec(),
            br#"{"fields": [1], "start": "2020-01-01", "end": "2020-12-31"}"#.to_vec(),
            ticket(&["close; DROP TABLE t_flight_reads; --"], ""),
            vec![0xff; 300],
            vec![b' '; 2 << 20],
        ];
        for bad in hostile {
            let got = client.do_get(Ticket::new(bad.clone())).await.map(|_| ()).unwrap_err();
            let got = status(got);
            assert_eq!(got.code(), Code::InvalidArgument, "{}", got.message());
            let described = client.get_flight_info(FlightDescriptor::new_cmd(bad)).await.map(|_| ()).unwrap_err();
            assert_eq!(status(described).code(), Code::InvalidArgument);
        }
        // Read-only: nothing the protocol offers writes.
        let put = client.do_put(futures::stream::iter(Vec::<Result<arrow_flight::FlightData, _>>::new())).await;
        assert_eq!(status(put.map(|_| ()).unwrap_err()).code(), Code::PermissionDenied);
        let action = client.do_action(Action::new("update", "")).await.map(|_| ()).unwrap_err();
        assert_eq!(status(action).code(), Code::InvalidArgument);
        let fields: Vec<_> = client.do_action(Action::new("fields", "")).await.expect("fields").try_collect().await.expect("fields");
        let fields: serde_json::Value = serde_json::from_slice(&fields[0]).expect("json");
        assert_eq!(fields.as_array().expect("list").len(), FIELDS.len());
    });
    assert_eq!(harness::read_all(&cache, &FIELDS).batch.num_rows(), rows.len(), "the store is untouched");
    terminate(daemon, 10.0, &log);
}

#[test]
fn a_read_over_the_cap_is_refused_before_it_is_read() {
    let Some((db, _)) = seeded("flight_cap", &format!("{LOCAL}max_read = \"20KB\"\n")) else { return };
    let (daemon, log) = serve(&db, &["--no-update"]);
    let addr = flight_addr(&log);
    runtime().block_on(async {
        let mut client = client(&addr, None).await;
        let err = read_flight(&mut client, ticket(&FIELDS, "")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("max_read"), "{}", err.message());
        let direct = status(client.do_get(Ticket::new(ticket(&FIELDS, ""))).await.map(|_| ()).unwrap_err());
        assert_eq!(direct.code(), Code::InvalidArgument);
        read_flight(&mut client, ticket(&["close"], r#", "symbols": ["S001"]"#)).await.expect("a small read passes");
    });
    assert_eq!(read_log(&log).matches("sent a read").count(), 1, "only the small read was sent");
    terminate(daemon, 10.0, &log);
}

#[test]
fn only_the_token_reads_and_it_never_reaches_the_log() {
    // The config names the token by variable, as a deployment would; this process validates it too.
    std::env::set_var("CHEETAH_TEST_TOKEN", TOKEN);
    let extra = "\n[flight]\nlisten = \"127.0.0.1:0\"\ntoken = \"${CHEETAH_TEST_TOKEN}\"\n";
    let Some((db, _)) = seeded("flight_token", extra) else { return };
    let log = db.dir.path().join("serve.log");
    let child = cheetah_command(&db, &["serve", "--no-update"])
        .env("CHEETAH_TEST_TOKEN", TOKEN)
        .env("CHEETAH_LOG", "debug")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let daemon = Daemon(Some(child));
    let addr = flight_addr(&log);
    runtime().block_on(async {
        for token in [None, Some("wrong"), Some("tok-3f1c9a7e5")] {
            let mut c = client(&addr, token).await;
            let err = read_flight(&mut c, ticket(&["close"], "")).await.unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{token:?}: {}", err.message());
            let direct = status(c.do_get(Ticket::new(ticket(&["close"], ""))).await.map(|_| ()).unwrap_err());
            assert_eq!(direct.code(), Code::Unauthenticated);
        }
        assert!(!read_log(&log).contains("sent a read"), "a refused call read nothing:\n{}", read_log(&log));
        let mut c = client(&addr, Some(TOKEN)).await;
        read_flight(&mut c, ticket(&["close"], "")).await.expect("the token reads");
    });
    terminate(daemon, 10.0, &log);
    let text = read_log(&log);
    assert!(text.contains("refused a call"), "{text}");
    assert!(!text.contains(TOKEN) && !text.contains("tok-3f1c9a7e5"), "the token is in the log:\n{text}");

    // Beyond loopback, a token is required.
    let config = std::fs::read_to_string(db.config_path()).expect("config");
    let open = config.split("\n[flight]").next().expect("text").to_string() + "\n[flight]\nlisten = \"0.0.0.0:0\"\n";
    std::fs::write(db.config_path(), open).expect("config");
    let (ok, _, stderr) = harness::cheetah(&db, &["serve", "--no-update"]);
    assert!(!ok && stderr.contains("serves other machines") && stderr.contains("token"), "{stderr}");
}

#[test]
fn tls_serves_clients_that_trust_its_certificate() {
    let Some(db) = Db::open(Kind::Sqlite, "flight_tls") else { return };
    let dir = db.dir.path();
    let made = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/make-certs.sh"))
        .arg(dir)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    db.create_table();
    let rows = market(0, 5, 5, SEED);
    db.insert(&rows);
    db.config(&FIELDS, &format!("{LOCAL}tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"));
    let (ok, _, stderr) = harness::cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let (daemon, log) = serve(&db, &["--no-update"]);
    let addr = flight_addr(&log);
    let port = addr.rsplit(':').next().expect("port").to_string();
    let ca = std::fs::read(dir.join("ca.pem")).expect("ca");
    runtime().block_on(async {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca)).domain_name("localhost");
        let channel = Channel::from_shared(format!("https://localhost:{port}"))
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("a TLS connection");
        let mut c = FlightClient::new(channel);
        let (_, batch) = read_flight(&mut c, ticket(&["close"], "")).await.expect("read over TLS");
        assert_eq!(batch.num_rows(), rows.len());
        // A client speaking plain HTTP/2 to it reads nothing.
        let plain = Channel::from_shared(format!("http://{addr}")).expect("url").connect().await;
        if let Ok(channel) = plain {
            assert!(read_flight(&mut FlightClient::new(channel), ticket(&["close"], "")).await.is_err());
        }
    });
    terminate(daemon, 10.0, &log);
}

/// Reads a big part's first message, then hangs up.
async fn leave_mid_stream(addr: &str) {
    let mut c = client(addr, None).await;
    let info = c.get_flight_info(FlightDescriptor::new_cmd(ticket(&FIELDS, ""))).await.expect("info");
    let mut stream = c.do_get(info.endpoint[0].ticket.clone().expect("ticket")).await.expect("stream").into_inner();
    stream.next().await.expect("a message").expect("data");
    drop(stream);
    drop(c);
}

#[test]
fn a_client_that_leaves_frees_its_stream_and_a_killed_server_is_a_clear_error_then_serves_again() {
    let Some(db) = Db::open(Kind::Sqlite, "flight_leave") else { return };
    db.create_table();
    // Enough rows (some 20 MB) that a read takes more messages than the socket and HTTP/2
    // windows buffer.
    let rows = market(0, 150, 1000, SEED);
    db.insert(&rows);
    db.config(&FIELDS, LOCAL);
    let (ok, _, stderr) = harness::cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let (daemon, log) = serve(&db, &["--no-update"]);
    let addr = flight_addr(&log);
    let rt = runtime();
    rt.block_on(leave_mid_stream(&addr));
    let streams = |key: &str| {
        rt.block_on(async {
            let mut c = client(&addr, None).await;
            let out: Vec<_> =
                c.do_action(Action::new("status", "")).await.expect("status").try_collect().await.expect("status");
            serde_json::from_slice::<serde_json::Value>(&out[0]).expect("json")["flight"][key].as_u64().expect("count")
        })
    };
    assert!(wait_for(10.0, || streams("streams_active") == 0), "the abandoned stream was freed:\n{}", read_log(&log));
    assert_eq!(streams("streams_abandoned"), 1);
    assert!(read_log(&log).contains("the client left mid-stream"), "{}", read_log(&log));
    terminate(daemon, 10.0, &log);

    // SIGKILL while a client streams: the client gets an error, not a short table.
    let (daemon, log) = serve(&db, &["--no-update"]);
    let addr = flight_addr(&log);
    let mut daemon = daemon;
    let port = addr.clone();
    rt.block_on(async {
        let mut c = client(&port, None).await;
        let info = c.get_flight_info(FlightDescriptor::new_cmd(ticket(&FIELDS, ""))).await.expect("info");
        let mut stream = c.do_get(info.endpoint[0].ticket.clone().expect("ticket")).await.expect("stream").into_inner();
        stream.next().await.expect("a message").expect("data");
        let child = daemon.0.take().expect("running");
        harness::signal(&child, libc::SIGKILL);
        let mut child = child;
        child.wait().expect("reap");
        let mut outcome = Ok(());
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                outcome = Err(e);
                break;
            }
        }
        let err = outcome.expect_err("a killed server ends the stream with an error");
        eprintln!("the client saw: {err}");
    });
    // Restarted on the same port, it serves the same client's next call.
    let config = std::fs::read_to_string(db.config_path()).expect("config");
    std::fs::write(db.config_path(), config.replace("127.0.0.1:0", &addr)).expect("config");
    let (daemon, log) = serve(&db, &["--no-update"]);
    assert_eq!(flight_addr(&log), addr);
    rt.block_on(async {
        let mut c = client(&addr, None).await;
        let (_, batch) = read_flight(&mut c, ticket(&FIELDS, "")).await.expect("served again");
        assert_eq!(batch.num_rows(), rows.len());
    });
    terminate(daemon, 10.0, &log);
}

/// A plan names the store version it was made at, and every endpoint of it reads that version:
/// a `serve` round that corrects the source and adds a date between planning and fetching
/// changes nothing of what the plan returns, and the next plan sees the round.
#[test]
fn a_plan_reads_the_version_it_was_made_at_across_a_serve_round() {
    let Some(db) = Db::open(Kind::Postgres, "flight_pinned") else { return };
    db.create_table();
    let rows = market(0, 12, SYMBOLS, SEED);
    let (old, new): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.date < day(10));
    db.insert(&old);
    db.config(&FIELDS, "lookback = 3\n[flight]\nlisten = \"127.0.0.1:0\"\npart_bytes = \"4KiB\"\n");
    let (ok, _, stderr) = harness::cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let (daemon, log) = serve(&db, &["--interval", "0.2"]);
    let addr = flight_addr(&log);
    runtime().block_on(async {
        let mut c = client(&addr, None).await;
        let date32 = r#", "dates": "date32""#;
        let info = c.get_flight_info(FlightDescriptor::new_cmd(ticket(&FIELDS, date32))).await.expect("plan");
        assert!(info.endpoint.len() > 2, "several endpoints: {}", info.endpoint.len());
        let planned: serde_json::Value = serde_json::from_slice(&info.app_metadata).expect("json");
        let version = planned["version"].as_u64().expect("the plan names its version");

        // A correction inside the lookback and a new date, committed by a serve round.
        db.exec(&format!("UPDATE {} SET close = close + 100 WHERE date = '{}'", db.table, day(9)));
        db.insert(&new);
        assert!(wait_for(20.0, || harness::watermark(&db) == Some(day(11))), "{}", read_log(&log));
        let reader = local(&db);
        assert!(reader.status().expect("status").versions.expect("versions").latest > version);

        let schema = std::sync::Arc::new(info.clone().try_decode_schema().expect("schema"));
        let mut batches = Vec::new();
        for endpoint in &info.endpoint {
            let part = c.do_get(endpoint.ticket.clone().expect("ticket")).await.expect("fetch");
            batches.extend(part.try_collect::<Vec<_>>().await.expect("stream"));
        }
        let pinned = arrow::compute::concat_batches(&schema, &batches).expect("one schema");
        let request = Request::new(
            day(0),
            chrono::NaiveDate::from_ymd_opt(2100, 1, 1).expect("date"),
            FIELDS.map(String::from).to_vec(),
        );
        let then = reader.get(&request.clone().as_of(cheetah_core::AsOf::Version(version))).expect("read");
        assert_eq!(plain(&pinned), plain(&then.batch), "every endpoint read the planned version");
        assert_result_matches(&pinned, &FIELDS, &model(&old), None);

        let (fresh, batch) = read_flight(&mut c, ticket(&FIELDS, date32)).await.expect("a new plan");
        let now: serde_json::Value = serde_json::from_slice(&fresh.app_metadata).expect("json");
        assert!(now["version"].as_u64().expect("version") > version, "{now}");
        assert_eq!(plain(&batch), plain(&reader.get(&request).expect("read").batch), "the new plan sees the round");
    });
    terminate(daemon, 10.0, &log);
}

const CLIENTS: usize = 16;

#[test]
fn sixteen_client_processes_read_whole_dates_while_serve_updates() {
    let Some(db) = Db::open(Kind::Postgres, "flight_many") else { return };
    db.create_table();
    let rows = market(0, DAYS, SYMBOLS, SEED);
    let (old, new): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.date < day(10));
    db.insert(&old);
    db.config(&FIELDS, &format!("lookback = 2\n{LOCAL}"));
    let (ok, _, stderr) = harness::cheetah(&db, &["update", "--no-progress"]);
    assert!(ok, "{stderr}");
    let (daemon, log) = serve(&db, &["--interval", "0.3", "--retry-min", "0.2", "--retry-max", "1"]);
    let addr = flight_addr(&log);
    let stop = db.dir.path().join("clients-stop");
    let addr_file = db.dir.path().join("flight-addr");
    std::fs::write(&addr_file, &addr).expect("addr");
    let envs = [("CHEETAH_FLIGHT_ADDR_FILE", addr_file.as_path()), ("CHEETAH_FLIGHT_STOP", stop.as_path())];
    let clients = harness::spawn_children("flight::client_process", CLIENTS, &envs);
    for date in 10..DAYS {
        db.insert(&new.iter().filter(|r| r.date == day(date)).cloned().collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(wait_for(20.0, || harness::watermark(&db) == Some(day(DAYS - 1))), "{}", read_log(&log));
    std::fs::write(&stop, b"").expect("flag");
    let (mut reads, mut lasts) = (0, std::collections::BTreeSet::new());
    for child in clients {
        let report = harness::child_report(child);
        reads += report["reads"].as_u64().expect("reads");
        lasts.insert(report["last"].as_str().expect("last").to_string());
        assert!(report["distinct"].as_u64().expect("distinct") >= 2, "a client saw dates arrive: {report}");
    }
    eprintln!("{CLIENTS} client processes: {reads} reads, each whole dates equal to the source");
    assert_eq!(lasts.into_iter().collect::<Vec<_>>(), [day(DAYS - 1).to_string()]);
    terminate(daemon, 10.0, &log);
}

/// One client process of the test above: reads everything over Flight in a loop, checking each
/// result is whole dates equal to the source, until told to stop.
#[test]
#[ignore = "a child process of sixteen_client_processes_read_whole_dates_while_serve_updates"]
fn client_process() {
    let addr =
        std::fs::read_to_string(std::env::var_os("CHEETAH_FLIGHT_ADDR_FILE").expect("run by the test")).expect("addr");
    let stop = PathBuf::from(std::env::var_os("CHEETAH_FLIGHT_STOP").expect("run by the test"));
    let expected = model(&market(0, DAYS, SYMBOLS, SEED));
    let (mut reads, mut seen) = (0u64, std::collections::BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    runtime().block_on(async {
        let mut c = client(&addr, None).await;
        let mut stopping: Option<Instant> = None;
        while stopping.is_none_or(|s| s.elapsed() < Duration::from_millis(300)) {
            if stopping.is_none() && stop.exists() {
                stopping = Some(Instant::now());
            }
            let (info, batch) = read_flight(&mut c, ticket(&FIELDS, r#", "dates": "date32""#)).await.expect("read");
            let covered: serde_json::Value = serde_json::from_slice(&info.app_metadata).expect("json");
            let through = covered["covered"][1].as_str().map(|d| d.parse::<chrono::NaiveDate>().expect("date"));
            assert_result_matches(&batch, &FIELDS, &expected, Some(through.unwrap_or(chrono::NaiveDate::MIN)));
            seen.insert(through);
            reads += 1;
            assert!(Instant::now() < deadline, "never told to stop");
        }
    });
    let last = seen.iter().flatten().max().map(|d| d.to_string());
    println!("READER {}", serde_json::json!({"reads": reads, "distinct": seen.len(), "last": last}));
}

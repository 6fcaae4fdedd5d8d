//! The HTTP service: routes, limits, authentication and graceful shutdown.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/predict` | PNG/JPEG body, or multipart with several images -> scores (JSON) |
//! | `GET /v1/model` | model identity, config, calibration, server limits |
//! | `GET /v1/report` | the gallery data of the page (empty without `--data`) |
//! | `GET /healthz`, `/readyz` | liveness; readiness (the scorer thread is running) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /` | the results browser (the HTML report with live scoring) |

use std::future::Future;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use image::{DynamicImage, ImageFormat};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::batch::{BatchTiming, Batcher, QueueError};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::report::{self, ReportData};
use crate::scorer::{ImageScore, ModelInfo, Scorer, Verdict};

/// The server's settings (the `daad serve` flags, without clap).
#[derive(Clone)]
pub struct ServeOptions {
    /// Address to listen on; loopback by default.
    pub addr: SocketAddr,
    /// Most images scored in one model call.
    pub max_batch: usize,
    /// Longest time the first image of a batch waits for more.
    pub max_wait: Duration,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Largest image width or height in pixels.
    pub max_image_side: u32,
    /// Most images in one multipart request.
    pub max_images_per_request: usize,
    /// Most predict requests in progress at once; more get 503.
    pub max_concurrent: usize,
    /// Time limit of one predict request; slower ones get 504.
    pub request_timeout: Duration,
    /// Bearer token required on `/v1/*` and `/metrics` (None: no authentication).
    pub token: Option<String>,
    /// The test-set gallery shown by the page (None: live scoring only).
    pub report: Option<ReportData>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_batch: 16,
            max_wait: Duration::from_millis(5),
            max_body_bytes: 32 << 20,
            max_image_side: 8192,
            max_images_per_request: 64,
            max_concurrent: 256,
            request_timeout: Duration::from_secs(30),
            token: None,
            report: None,
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    // By hand so that logs never show the token, nor megabytes of report images.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("addr", &self.addr)
            .field("max_batch", &self.max_batch)
            .field("max_wait", &self.max_wait)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_image_side", &self.max_image_side)
            .field("max_images_per_request", &self.max_images_per_request)
            .field("max_concurrent", &self.max_concurrent)
            .field("request_timeout", &self.request_timeout)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("report_images", &self.report.as_ref().map(|r| r.images.len()))
            .finish()
    }
}

/// Reads a bearer token from `path` (surrounding whitespace removed; an empty file is an error).
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        op: "reading the token file",
        path: path.into(),
        source,
    })?;
    let token = text.trim().to_string();
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::BadToken { path: path.into() });
    }
    Ok(token)
}

/// Shared by every handler.
struct AppState {
    info: ModelInfo,
    batcher: Batcher,
    opts: ServeOptions,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    page: String,
}

/// A bound server, not yet accepting requests: [`Server::local_addr`] tells the port when
/// `addr` asked for port 0.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    worker: std::thread::JoinHandle<()>,
}

impl Server {
    /// Starts the scorer thread and binds `opts.addr`.
    pub async fn bind(scorer: Arc<dyn Scorer>, opts: ServeOptions) -> Result<Server> {
        let listener = TcpListener::bind(opts.addr)
            .await
            .map_err(|source| Error::Bind { addr: opts.addr, source })?;
        let addr =
            listener.local_addr().map_err(|source| Error::Bind { addr: opts.addr, source })?;
        if !addr.ip().is_loopback() && opts.token.is_none() {
            tracing::warn!(
                "listening on {addr} without a token: anyone who can reach it can use the model; \
                 pass --token-file FILE"
            );
        }
        let metrics = Arc::new(Metrics::new());
        let queue = opts.max_concurrent.max(1) * opts.max_images_per_request.max(1);
        let info = scorer.info();
        let (batcher, worker) = Batcher::start(
            scorer,
            opts.max_batch,
            opts.max_wait,
            queue.min(1 << 16),
            metrics.clone(),
        )
        .map_err(|source| Error::Io {
            op: "starting the scorer thread",
            path: "".into(),
            source,
        })?;
        let page = report::render_page(None, &info, true);
        let state = Arc::new(AppState {
            permits: Arc::new(Semaphore::new(opts.max_concurrent.max(1))),
            info,
            batcher,
            opts,
            metrics,
            page,
        });
        Ok(Server { listener, state, worker })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|source| Error::Bind { addr: self.state.opts.addr, source })
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes the requests in
    /// progress and stops the scorer thread.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let Server { listener, state, worker } = self;
        let addr = state.opts.addr;
        tracing::info!(
            "serving {} ({}, {} products) on http://{}",
            state.info.run,
            state.info.variant,
            state.info.precision,
            listener.local_addr().map_or_else(|_| addr.to_string(), |a| a.to_string())
        );
        let app = router(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| Error::Io { op: "serving", path: "".into(), source })?;
        // Every handler (and so every batcher handle) is gone: the worker drains and exits.
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Serves `scorer` with `opts` until SIGTERM or ctrl-c, then finishes the requests in flight.
pub async fn serve(scorer: Arc<dyn Scorer>, opts: ServeOptions) -> Result<()> {
    Server::bind(scorer, opts).await?.run_until(shutdown_signal()).await
}

/// Completes on ctrl-c or (Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing the requests in progress");
}

fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/model", get(model))
        .route("/v1/report", get(report_data))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .merge(protected)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route; see GET /v1/model, POST /v1/predict",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "wrong method for this route: POST /v1/predict, GET everything else",
            )
        })
        .with_state(state)
}

/// A JSON error response: `{"error": {"status", "code", "message"}}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"status": self.status.as_u16(), "code": self.code, "message": self.message}});
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Equal strings, in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.opts.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.trim().as_bytes(), token.as_bytes())) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs `Authorization: Bearer TOKEN` (the token in its --token-file)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn page(State(st): State<Arc<AppState>>) -> Html<String> {
    Html(st.page.clone())
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.batcher.is_closed() {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the scorer thread has stopped")
            .into_response()
    } else {
        Json(json!({"status": "ready"})).into_response()
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))],
        st.metrics.render(),
    )
        .into_response()
}

async fn model(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let o = &st.opts;
    Json(json!({
        "model": st.info,
        "server": {
            "version": env!("CARGO_PKG_VERSION"),
            "max_batch": o.max_batch,
            "max_wait_ms": o.max_wait.as_secs_f64() * 1e3,
            "max_body_bytes": o.max_body_bytes,
            "max_image_side": o.max_image_side,
            "max_images_per_request": o.max_images_per_request,
            "max_concurrent": o.max_concurrent,
            "request_timeout_s": o.request_timeout.as_secs_f64(),
        }
    }))
}

async fn report_data(State(st): State<Arc<AppState>>) -> Json<ReportData> {
    Json(st.opts.report.clone().unwrap_or_else(|| ReportData::empty(&st.info)))
}

/// `?heatmap=1&reconstruction=1`.
#[derive(Debug, Default, Deserialize)]
struct PredictQuery {
    #[serde(default)]
    heatmap: Option<String>,
    #[serde(default)]
    reconstruction: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| matches!(v, "1" | "true" | "yes" | ""))
}

/// Per-image timings in milliseconds.
#[derive(Debug, Serialize)]
struct Timings {
    decode_ms: f64,
    queue_ms: f64,
    model_ms: f64,
    batch_size: usize,
}

/// One image's entry in the predict response.
#[derive(Debug, Serialize)]
struct ImageResult {
    name: String,
    width: u32,
    height: u32,
    score: f64,
    r: f64,
    l: Option<f64>,
    verdict: Verdict,
    threshold: Option<f64>,
    timings: Timings,
    #[serde(skip_serializing_if = "Option::is_none")]
    heatmap_png: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    map_png: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconstruction_png: Option<String>,
}

async fn predict(
    State(st): State<Arc<AppState>>,
    Query(q): Query<PredictQuery>,
    req: Request,
) -> Response {
    let t0 = Instant::now();
    let timeout = st.opts.request_timeout;
    let result = match tokio::time::timeout(timeout, predict_inner(&st, &q, req)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than the server's limit of {:.1}s",
                timeout.as_secs_f64()
            ),
        )),
    };
    let seconds = t0.elapsed().as_secs_f64();
    let response = match result {
        Ok(mut body) => {
            body["timings"] = json!({"total_ms": seconds * 1e3});
            Json(body).into_response()
        }
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!("predict: {} {}", e.status, e.message);
            } else {
                tracing::debug!("predict: {} {}", e.status, e.message);
            }
            e.into_response()
        }
    };
    st.metrics.request(response.status().as_u16(), seconds);
    response
}

/// A received image before decoding.
struct Upload {
    name: String,
    bytes: axum::body::Bytes,
}

async fn predict_inner(
    st: &Arc<AppState>,
    q: &PredictQuery,
    req: Request,
) -> std::result::Result<serde_json::Value, ApiError> {
    let _permit = st.permits.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("more than {} requests in progress; retry shortly", st.opts.max_concurrent),
        )
    })?;
    let coming = st.batcher.coming();
    let uploads = read_uploads(st, req).await?;
    let (want_heatmap, want_rec) = (flag(&q.heatmap), flag(&q.reconstruction));
    let max_side = st.opts.max_image_side;
    // Decode every image off the async threads, then queue them all, so a multipart request's
    // images can share one batch.
    let mut decoded = Vec::with_capacity(uploads.len());
    for up in uploads {
        let t = Instant::now();
        let name = up.name.clone();
        let img = tokio::task::spawn_blocking(move || decode(&up.name, &up.bytes, max_side))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })??;
        decoded.push((name, img, t.elapsed().as_secs_f64()));
    }
    let detail = want_heatmap || want_rec;
    // Released before the images are queued (with no await in between): the worker must not
    // see this request as still on its way once its first image is in the queue.
    drop(coming);
    let mut pending = Vec::with_capacity(decoded.len());
    for (name, img, decode_s) in decoded {
        let keep = detail.then(|| img.clone());
        let (w, h) = (img.width(), img.height());
        let rx = st.batcher.submit(img, detail).map_err(|e| match e {
            QueueError::Full => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the scoring queue is full; retry shortly",
            ),
            QueueError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
        })?;
        pending.push((name, w, h, keep, decode_s, rx));
    }
    let mut results = Vec::with_capacity(pending.len());
    for (name, width, height, keep, decode_s, rx) in pending {
        let (score, timing) = rx
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the scorer stopped",
                )
            })?
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "scoring_failed", e.to_string())
            })?;
        let images = if detail {
            let (h, r) = (want_heatmap, want_rec);
            tokio::task::spawn_blocking(move || {
                render_images(keep.as_ref(), &score, h, r).map(|x| (score, x))
            })
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
        } else {
            Ok((score, (None, None, None)))
        };
        let (score, (heatmap_png, map_png, reconstruction_png)) = images?;
        results.push(ImageResult {
            name,
            width,
            height,
            score: score.score,
            r: score.r,
            l: score.l,
            verdict: score.verdict,
            threshold: st.info.threshold,
            timings: timings(decode_s, timing),
            heatmap_png,
            map_png,
            reconstruction_png,
        });
    }
    Ok(json!({
        "model": {"run": st.info.run, "run_id": st.info.run_id, "variant": st.info.variant, "image_size": st.info.image_size, "precision": st.info.precision},
        "threshold": st.info.threshold,
        "results": results,
    }))
}

fn timings(decode_s: f64, t: BatchTiming) -> Timings {
    Timings {
        decode_ms: decode_s * 1e3,
        queue_ms: t.queue_s * 1e3,
        model_ms: t.model_s * 1e3,
        batch_size: t.batch_size,
    }
}

type Pngs = (Option<String>, Option<String>, Option<String>);

/// The base64 PNGs asked for: heatmap overlay and colour map at the input's size, reconstruction.
fn render_images(
    input: Option<&DynamicImage>,
    score: &ImageScore,
    heatmap: bool,
    rec: bool,
) -> std::result::Result<Pngs, ApiError> {
    let fail = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "render_failed", e);
    let (mut overlay, mut map_png, mut rec_png) = (None, None, None);
    if heatmap {
        if let (Some(img), Some(map)) = (input, &score.map) {
            let rgb = img.to_rgb8();
            let o = daad::eval::overlay(&rgb, map, &daad::eval::HeatmapOptions::default(), None)
                .map_err(|e| fail(e.to_string()))?;
            overlay = Some(png_base64(&DynamicImage::ImageRgb8(o)).map_err(fail)?);
            let c = daad::eval::colorize(map, daad::eval::HeatmapRange::PerImage)
                .map_err(|e| fail(e.to_string()))?;
            map_png = Some(png_base64(&DynamicImage::ImageRgb8(c)).map_err(fail)?);
        }
    }
    if rec {
        if let Some(r) = &score.reconstruction {
            rec_png = Some(png_base64(&DynamicImage::ImageRgb8(r.clone())).map_err(fail)?);
        }
    }
    Ok((overlay, map_png, rec_png))
}

/// `image` as a base64 PNG.
pub(crate) fn png_base64(image: &DynamicImage) -> std::result::Result<String, String> {
    let mut buf = Vec::new();
    image.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

async fn read_uploads(
    st: &Arc<AppState>,
    req: Request,
) -> std::result::Result<Vec<Upload>, ApiError> {
    let limit = st.opts.max_body_bytes;
    let too_large = |n: Option<u64>| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body{} is larger than the server's limit of {limit} bytes",
                n.map_or(String::new(), |n| format!(" ({n} bytes)"))
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        drain(req.into_body(), limit).await;
        return Err(too_large(declared));
    }
    let ctype = content_type(req.headers());
    match ctype.as_str() {
        "image/png" | "image/jpeg" | "image/jpg" | "application/octet-stream" | "" => {
            let bytes = read_limited(req.into_body(), limit).await.ok_or_else(|| too_large(None))?;
            if bytes.is_empty() {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "empty_body", "the request body is empty: send a PNG or JPEG image"));
            }
            Ok(vec![Upload { name: "image".into(), bytes }])
        }
        "multipart/form-data" => {
            let (parts, body) = req.into_parts();
            let bytes = read_limited(body, limit).await.ok_or_else(|| too_large(None))?;
            let req = Request::from_parts(parts, Body::from(bytes));
            let mut mp = axum::extract::Multipart::from_request(req, &())
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", format!("malformed multipart body: {e}")))?;
            let mut out = Vec::new();
            loop {
                let field = mp.next_field().await.map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", format!("malformed multipart body: {e}"))
                })?;
                let Some(field) = field else { break };
                let name = field
                    .file_name()
                    .or(field.name())
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("image{}", out.len()));
                let bytes = field.bytes().await.map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", format!("malformed multipart part {name}: {e}"))
                })?;
                if out.len() == st.opts.max_images_per_request {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_images",
                        format!("more than {} images in one request", st.opts.max_images_per_request),
                    ));
                }
                out.push(Upload { name, bytes });
            }
            if out.is_empty() {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "no_images", "the multipart body has no parts: add one part per image"));
            }
            Ok(out)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!("content type `{other}` is not accepted: send image/png, image/jpeg, application/octet-stream or multipart/form-data"),
        )),
    }
}

/// Most bytes of a rejected body read and thrown away **(choice)**: a client that is still
/// sending when the server answers and closes gets a connection reset instead of the 413, so
/// moderately oversized bodies are drained first; larger ones are cut off.
const DRAIN_BYTES: usize = 64 << 20;

/// Reads and discards up to `limit + DRAIN_BYTES` bytes of `body`.
async fn drain(body: Body, limit: usize) {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, |d| d.len());
        if seen > limit.saturating_add(DRAIN_BYTES) {
            break;
        }
    }
}

/// The whole body, or None (after draining the rest) when it is larger than `limit`.
async fn read_limited(body: Body, limit: usize) -> Option<axum::body::Bytes> {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.ok()?;
        if let Some(d) = frame.data_ref() {
            if buf.len() + d.len() > limit {
                drain(body, limit).await;
                return None;
            }
            buf.extend_from_slice(d);
        }
    }
    Some(buf.into())
}

/// Decodes a PNG or JPEG with dimension and allocation limits.
fn decode(name: &str, bytes: &[u8], max_side: u32) -> std::result::Result<DynamicImage, ApiError> {
    let bad =
        |code, msg: String| ApiError::new(StatusCode::BAD_REQUEST, code, format!("{name}: {msg}"));
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad("unreadable", e.to_string()))
    };
    let r = reader()?;
    match r.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        Some(f) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image_format",
                format!("{name}: {f:?} images are not accepted; send PNG or JPEG"),
            ))
        }
        None => return Err(bad("not_an_image", "the data is not a PNG or JPEG image".into())),
    }
    let (w, h) = r
        .into_dimensions()
        .map_err(|e| bad("bad_image", format!("cannot read the image header ({e})")))?;
    if w == 0 || h == 0 {
        return Err(bad("bad_image", format!("the image is empty ({w}x{h})")));
    }
    if w > max_side || h > max_side {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "image_too_large",
            format!(
                "{name}: {w}x{h} pixels exceeds the server's limit of {max_side} pixels per side"
            ),
        ));
    }
    let mut r = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    r.limits(limits);
    r.decode()
        .map_err(|e| bad("bad_image", format!("cannot decode the image ({e}); is it truncated?")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn decode_names_the_problem() {
        let e = decode("x", b"hello world, not an image", 64).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "not_an_image"));
        let mut png = Vec::new();
        DynamicImage::new_rgb8(100, 10)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let e = decode("x", &png, 64).unwrap_err();
        assert_eq!(e.code, "image_too_large");
        assert!(e.message.contains("100x10"), "{}", e.message);
        let e = decode("x", &png[..png.len() / 2], 128).unwrap_err();
        assert_eq!(e.code, "bad_image");
        assert_eq!(decode("x", &png, 128).unwrap().width(), 100);
    }
}

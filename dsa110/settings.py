"""Runtime settings, read from the environment (``DSA110_*``) and overridable by the CLI.

One frozen dataclass, passed explicitly to whatever needs it: no module-level globals,
so tests can build several apps with different settings in one process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dsa110.events.bus import DEFAULT_NAMESPACE


def _default_data_dir() -> Path:
    return Path(os.environ.get("DSA110_DATA_DIR", "data")).resolve()


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str | None = None
    events_url: str = "memory://"
    events_namespace: str = DEFAULT_NAMESPACE
    """Prefix of the bus channels: keeps deployments (or test runs) sharing one Redis or
    PostgreSQL apart."""
    host: str = "127.0.0.1"
    port: int = 8000
    metrics_interval_s: float = 10.0
    metrics_retention: int = 8640
    max_page_size: int = 500
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_body_bytes: int = 1_000_000
    introspection: bool = True
    write_lock_timeout_s: float = 10.0
    """How long a writer waits for the database's write lock before it is refused with
    ``BUSY`` (HTTP 503 and ``Retry-After``); nothing of a refused write is kept."""
    # -- work one request may cause (schema.cost, server.work) ------------------------------
    max_query_cost: int = 1_000_000
    """Largest estimated cost of one operation (``schema.cost``); more: ``QUERY_TOO_COSTLY``."""
    max_cost_in_flight: int = 2_000_000
    """Sum of the estimated costs of the queries and mutations one process runs at once
    (``schema.in_flight``); one more is refused with ``BUSY`` (503). 0: no limit."""
    max_cost_in_flight_per_client: int = 1_000_000
    """One client's part of ``max_cost_in_flight`` (its identity, or an anonymous address):
    one WebSocket cannot hold the whole budget. 0: no share."""
    subscription_cost_budget: int = 200_000
    """Sum of the costs of the subscriptions open on one connection (each event runs them all)."""
    request_deadline_s: float = 30.0
    """Time an HTTP request may compute before its answer starts; then its work and SQL are
    cancelled (504 ``DEADLINE_EXCEEDED``). 0: no deadline."""
    max_response_bytes: int = 50_000_000
    """Largest JSON answer of /graphql and /api (``RESPONSE_TOO_LARGE``); 0: no cap."""
    max_concurrent_requests_per_client: int = 16
    """HTTP requests one identity (or anonymous address) may have in flight in one process
    (429 ``TOO_MANY_CONCURRENT_REQUESTS``); 0: no limit."""
    # -- who may do what (dsa110.auth) --------------------------------------------------
    anonymous_read: bool = True
    """Reads without credentials (the legacy dashboard, `make run`); writes never are."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins (``https://host:port``) allowed cross-site; empty: CORS off."""
    oidc_issuer: str | None = None
    """OIDC issuer whose bearer tokens are accepted (its ``iss``); None: tokens off."""
    oidc_audience: str | None = None
    oidc_jwks: str | None = None
    """The issuer's signing keys: a JWKS file path or an ``https://`` URL."""
    oidc_algorithms: tuple[str, ...] = ("RS256", "ES256")
    oidc_role_claim: str = "roles"
    """Claim holding the role (a dotted path such as ``realm_access.roles``; string or list)."""
    oidc_name_claim: str = "sub"
    api_key_cache_s: float = 5.0
    """How long a verified key is trusted before its row is read again (revocation delay)."""
    rate_limit_per_minute: int = 6000
    """Requests per minute per authenticated identity (0: no limit)."""
    anonymous_rate_limit_per_minute: int = 1200
    """Requests per minute per client address without credentials (0: no limit)."""
    output_dirs: tuple[Path, ...] = ()
    """Where outputs named by users (a job's output path) may go; empty: the data directory."""
    # -- science ----------------------------------------------------------------------
    ese_operating_point: float = 0.002
    """The survey's ESE operating point: the live false-alarm probability per steady
    source-year at which a candidate counts as flagged (the injection bench's figures are
    at 0.002). The dashboard's candidate list (``/api/ese/candidates``) shows the candidates
    at it by default; the graph lists every candidate and filters by choice."""
    # -- other tools: exports, the cone search, plots, /metrics, webhooks ----------------
    export_max_rows: int = 2_000_000
    """Most rows one table export streams (``/exports/...``)."""
    vo_max_records: int = 50_000
    """Largest ``MAXREC`` a cone search (``/vo/...``) accepts."""
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Networks whose clients may read ``/metrics`` without a key (operator keys always may)."""
    public_url: str | None = None
    """This server's address as others reach it (``https://dsa110.example.org``), for links in alerts."""
    webhook_poll_s: float = 5.0
    """How often the webhook dispatcher looks for events and due deliveries (0: webhooks off)."""
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = 12
    webhook_retry_base_s: float = 10.0
    """First retry delay; doubling per attempt up to an hour (with +-20 % jitter)."""
    webhook_allow_hosts: tuple[str, ...] = ()
    """Host names and networks webhooks may reach although internal (default: public addresses only)."""
    webhook_streaming_stale_minutes: float = 30.0
    """No observation group for this long is a ``streaming_down`` event (0: never)."""
    extra_file_roots: tuple[Path, ...] = ()
    """Directories besides the data directory whose files the API may read (MS, cal tables,
    UVH5, QA); nothing outside ``file_roots`` is ever opened for a client."""
    products_root: Path | None = None
    """Where published products go (legacy: an HDD area apart from the SSD staging area);
    ``<data_dir>/products`` by default."""
    # -- connections (server.connections: enforced below the app, per process) ----------
    header_timeout_s: float = 10.0
    """A request whose headers are not complete this long after its first byte (or after the
    connection opened) is answered 408 and closed: slow or never-finished headers hold no socket."""
    max_connections: int = 0
    """Open connections per server process; 0: the open-files limit less a reserve for the
    database, logs and the process itself (``server.connections.connection_budget``)."""
    max_connections_per_client: int = 1024
    """Open connections per client address (the TCP peer: behind a proxy, the proxy; 0: no cap)."""
    health_stall_s: float = 5.0
    """``/healthz`` answers 503 (``event_loop: stalled``) when the event loop has not run for this
    long, however well the front door that answers it is doing (``server.health``)."""
    ws_init_timeout_s: float = 10.0
    """A GraphQL WebSocket (either protocol) that sends no ``connection_init`` by then is closed (4408)."""
    # -- jobs and the streaming service (dsa110.ops.queue, dsa110.ops.streaming) ---------
    job_slots: int = 0
    """Jobs the worker pool inside the server runs at once (0: none; ``dsa110-graph serve``
    defaults to 2 so that ``make run`` works alone; more capacity: ``dsa110-graph worker``)."""
    job_lease_s: float = 30.0
    """A worker renews its jobs' leases every third of this; a job whose lease runs out is
    taken to have lost its worker (retried or failed by its kind)."""
    job_poll_s: float = 0.5
    """How often an idle worker looks for queued jobs and cancel requests (events wake it sooner)."""
    publish_claim_timeout_s: float = 21600.0
    """A data product still ``publishing`` this long after its publication claimed it lost its
    publisher (killed): the workers' reaper settles it by what is on disk
    (``dsa110.ops.products.recover_publishing``). Longer than any move can take (a
    cross-filesystem copy of the largest product); 0 turns the sweep off."""
    job_executor: str = "local"
    """``local`` (processes on this host) or ``dask`` (a dask.distributed cluster)."""
    dask_scheduler: str | None = None
    """The Dask scheduler address (``tcp://host:8786``) for ``job_executor = dask``."""
    streaming_supervise: bool = False
    """The server supervises the streaming service (starts it when asked, restarts it on crash);
    ``dsa110-graph serve`` turns it on (``--no-streaming-supervisor`` off)."""
    legacy_follow: tuple[Path, ...] = ()
    """The legacy pipeline's state directory (or state files) the server follows, importing
    what the pipeline writes (``serve --follow-legacy``, ``dsa110.legacy``); empty: off."""
    legacy_poll_s: float = 0.25
    """How often the legacy follower asks the state files whether they changed."""

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL; SQLite under the data directory unless one is given."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'dsa110.sqlite3'}"

    @property
    def events_shared(self) -> bool:
        """The bus reaches other processes (Redis or PostgreSQL), not just this one."""
        return not self.events_url.startswith("memory:")

    @property
    def output_roots(self) -> tuple[Path, ...]:
        """The roots a user-given output path must resolve under (``dsa110.names.resolve_under``)."""
        return self.output_dirs or (self.data_dir,)

    # -- file areas (all inside ``file_roots``) ---------------------------------------------

    @property
    def staging_dir(self) -> Path:
        """Where the pipeline writes products before publication (MS, tables, images...)."""
        return self.data_dir

    @property
    def products_dir(self) -> Path:
        return self.products_root if self.products_root is not None else self.data_dir / "products"

    @property
    def ms_dir(self) -> Path:
        return self.data_dir / "ms"

    @property
    def incoming_dir(self) -> Path:
        """Raw UVH5 subband files as the correlator writes them."""
        return self.data_dir / "incoming"

    @property
    def qa_dir(self) -> Path:
        return self.data_dir / "qa"

    @property
    def reports_dir(self) -> Path:
        """QA reports (``<image_stem>_validation_report.html``): the only place they are written."""
        return self.qa_dir / "reports"

    @property
    def cache_dir(self) -> Path:
        """Derived files (thumbnails, plots) that can be rebuilt at any time."""
        return self.data_dir / ".cache"

    @property
    def file_roots(self) -> tuple[Path, ...]:
        return tuple(
            dict.fromkeys(p.resolve() for p in (self.data_dir, self.products_dir, *self.extra_file_roots))
        )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        base = cls(
            data_dir=_default_data_dir(),
            database_url=env.get("DSA110_DATABASE_URL") or None,
            events_url=env.get("DSA110_EVENTS_URL", "memory://"),
            events_namespace=env.get("DSA110_EVENTS_NAMESPACE") or DEFAULT_NAMESPACE,
            host=env.get("DSA110_HOST", "127.0.0.1"),
            port=int(env.get("DSA110_PORT", "8000")),
            metrics_interval_s=float(env.get("DSA110_METRICS_INTERVAL_S", "10")),
            write_lock_timeout_s=float(env.get("DSA110_WRITE_LOCK_TIMEOUT_S", "10")),
            extra_file_roots=tuple(Path(p) for p in env.get("DSA110_FILE_ROOTS", "").split(os.pathsep) if p),
            products_root=Path(env["DSA110_PRODUCTS_DIR"]) if env.get("DSA110_PRODUCTS_DIR") else None,
            **_ops_from_env(env),
            legacy_follow=tuple(Path(p) for p in env.get("DSA110_LEGACY_FOLLOW", "").split(os.pathsep) if p),
            legacy_poll_s=float(env.get("DSA110_LEGACY_POLL_S", "0.25")),
            **_auth_from_env(env),
            **_ecosystem_from_env(env),
            **_work_from_env(env),
            **_connections_from_env(env),
        )
        clean: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)


def _auth_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``DSA110_*`` variables of the identity and abuse settings that are set."""
    out: dict[str, Any] = {}
    if "DSA110_ANONYMOUS_READ" in env:
        out["anonymous_read"] = env["DSA110_ANONYMOUS_READ"].strip().lower() not in (
            "0",
            "false",
            "no",
            "off",
        )
    for name, key in (
        ("DSA110_CORS_ORIGINS", "cors_origins"),
        ("DSA110_OIDC_ALGORITHMS", "oidc_algorithms"),
    ):
        if name in env:
            out[key] = tuple(part.strip() for part in env[name].split(",") if part.strip())
    for name, key in (
        ("DSA110_OIDC_ISSUER", "oidc_issuer"),
        ("DSA110_OIDC_AUDIENCE", "oidc_audience"),
        ("DSA110_OIDC_JWKS", "oidc_jwks"),
        ("DSA110_OIDC_ROLE_CLAIM", "oidc_role_claim"),
        ("DSA110_OIDC_NAME_CLAIM", "oidc_name_claim"),
    ):
        if env.get(name):
            out[key] = env[name]
    if env.get("DSA110_OUTPUT_DIRS"):
        out["output_dirs"] = tuple(
            Path(d).resolve() for d in env["DSA110_OUTPUT_DIRS"].split(os.pathsep) if d
        )
    if "DSA110_API_KEY_CACHE_S" in env:
        out["api_key_cache_s"] = float(env["DSA110_API_KEY_CACHE_S"])
    for name, key in (
        ("DSA110_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute"),
        ("DSA110_ANONYMOUS_RATE_LIMIT_PER_MINUTE", "anonymous_rate_limit_per_minute"),
    ):
        if name in env:
            out[key] = int(env[name])
    return out


def _work_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``DSA110_*`` variables of the per-request work limits that are set."""
    out: dict[str, Any] = {}
    for name, key, kind in (
        ("DSA110_MAX_QUERY_COST", "max_query_cost", int),
        ("DSA110_MAX_COST_IN_FLIGHT", "max_cost_in_flight", int),
        ("DSA110_MAX_COST_IN_FLIGHT_PER_CLIENT", "max_cost_in_flight_per_client", int),
        ("DSA110_SUBSCRIPTION_COST_BUDGET", "subscription_cost_budget", int),
        ("DSA110_REQUEST_DEADLINE_S", "request_deadline_s", float),
        ("DSA110_MAX_RESPONSE_BYTES", "max_response_bytes", int),
        ("DSA110_MAX_CONCURRENT_REQUESTS_PER_CLIENT", "max_concurrent_requests_per_client", int),
    ):
        if name in env:
            out[key] = kind(env[name])
    return out


def _ecosystem_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``DSA110_*`` variables of /metrics, exports and webhooks that are set."""
    out: dict[str, Any] = {}
    if "DSA110_METRICS_ALLOW" in env:
        text = env["DSA110_METRICS_ALLOW"].strip().lower()
        everyone = ("0.0.0.0/0", "::/0")
        out["metrics_allow"] = everyone if text in ("any", "*") else _words(text)
    if "DSA110_WEBHOOK_ALLOW_HOSTS" in env:
        out["webhook_allow_hosts"] = _words(env["DSA110_WEBHOOK_ALLOW_HOSTS"])
    if "DSA110_ESE_OPERATING_POINT" in env:
        out["ese_operating_point"] = _probability(
            "DSA110_ESE_OPERATING_POINT", env["DSA110_ESE_OPERATING_POINT"]
        )
    if env.get("DSA110_PUBLIC_URL"):
        out["public_url"] = env["DSA110_PUBLIC_URL"].rstrip("/")
    for name, key, kind in (
        ("DSA110_WEBHOOK_POLL_S", "webhook_poll_s", float),
        ("DSA110_WEBHOOK_TIMEOUT_S", "webhook_timeout_s", float),
        ("DSA110_WEBHOOK_MAX_ATTEMPTS", "webhook_max_attempts", int),
        ("DSA110_WEBHOOK_RETRY_BASE_S", "webhook_retry_base_s", float),
        ("DSA110_WEBHOOK_STREAMING_STALE_MINUTES", "webhook_streaming_stale_minutes", float),
        ("DSA110_EXPORT_MAX_ROWS", "export_max_rows", int),
    ):
        if name in env:
            out[key] = kind(env[name])
    return out


def _connections_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``DSA110_*`` variables of the connection limits that are set."""
    out: dict[str, Any] = {}
    for name, key, kind in (
        ("DSA110_HEADER_TIMEOUT_S", "header_timeout_s", float),
        ("DSA110_MAX_CONNECTIONS", "max_connections", int),
        ("DSA110_MAX_CONNECTIONS_PER_CLIENT", "max_connections_per_client", int),
        ("DSA110_WS_INIT_TIMEOUT_S", "ws_init_timeout_s", float),
        ("DSA110_HEALTH_STALL_S", "health_stall_s", float),
    ):
        if name in env:
            out[key] = kind(env[name])
    return out


def _probability(name: str, text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise ValueError(f"{name} must be a probability in (0, 1], not {text!r}")
    return value


def _words(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _ops_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``DSA110_*`` variables of the job queue and the streaming service that are set."""
    out: dict[str, Any] = {}
    for name, key, kind in (
        ("DSA110_JOB_SLOTS", "job_slots", int),
        ("DSA110_JOB_LEASE_S", "job_lease_s", float),
        ("DSA110_JOB_POLL_S", "job_poll_s", float),
        ("DSA110_PUBLISH_CLAIM_TIMEOUT_S", "publish_claim_timeout_s", float),
    ):
        if name in env:
            out[key] = kind(env[name])
    if env.get("DSA110_JOB_EXECUTOR"):
        out["job_executor"] = env["DSA110_JOB_EXECUTOR"].strip().lower()
    if env.get("DSA110_DASK_SCHEDULER"):
        out["dask_scheduler"] = env["DSA110_DASK_SCHEDULER"].strip()
    if "DSA110_STREAMING_SUPERVISE" in env:
        out["streaming_supervise"] = env["DSA110_STREAMING_SUPERVISE"].strip().lower() not in (
            "0",
            "false",
            "no",
            "off",
        )
    return out

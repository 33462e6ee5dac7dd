"""Settings, read from the environment (django-environ).

With nothing set (and ``DJANGO_DEBUG=1``) the app runs embedded: SQLite, local-memory cache,
in-memory channel layer, Celery tasks in-process, rate limits in-process. ``DATABASE_URL`` and
``REDIS_URL`` switch to PostgreSQL (psycopg 3 with its pool) and Redis for every shared piece.
Every setting is listed in ``.env.example``.
"""

import json
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
APP_ENV = env.str("APP_ENV", default="development" if DEBUG else "production")

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DJANGO_DEBUG is on.")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_prometheus",
    "tenants",
    "conversations",
    "prompts",
    "memory",
    "web",
]

MIDDLEWARE = [
    "llmapp.middleware.RequestIdMiddleware",
    # Django's and django-prometheus's middleware, subclassed in llmapp.middleware so that their
    # hooks run on the event loop under ASGI instead of a thread hop each.
    "llmapp.middleware.PrometheusBeforeMiddleware",
    "llmapp.middleware.SecurityMiddleware",
    "llmapp.middleware.SessionMiddleware",
    "llmapp.middleware.CommonMiddleware",
    "llmapp.middleware.CsrfViewMiddleware",
    "llmapp.middleware.AuthenticationMiddleware",
    "llmapp.middleware.MessageMiddleware",
    "llmapp.middleware.XFrameOptionsMiddleware",
    "llmapp.middleware.AccessLogMiddleware",
    "llmapp.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "llmapp.urls"
ASGI_APPLICATION = "llmapp.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)
DATABASE_CONNECT_TIMEOUT_SECONDS = env.int("DATABASE_CONNECT_TIMEOUT_SECONDS", default=3)
if DATABASE_URL:
    _db = env.db_url_config(DATABASE_URL)
    _db["ENGINE"] = "django_prometheus.db.backends.postgresql"
    # Under ASGI every request may run in another thread: persistent connections leak, so the
    # pool (psycopg_pool) keeps connections and Django closes its handle after each request.
    _db["CONN_MAX_AGE"] = 0
    # With the pool this makes psycopg check a connection on checkout, so connections broken by
    # a database restart are replaced instead of failing the next requests.
    _db["CONN_HEALTH_CHECKS"] = True
    _db["OPTIONS"] = {"connect_timeout": DATABASE_CONNECT_TIMEOUT_SECONDS}
    if DATABASE_POOL_MAX_SIZE > 0:
        _db["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": DATABASE_CONNECT_TIMEOUT_SECONDS,
        }
    DATABASES = {"default": _db}
else:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django_prometheus.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {"timeout": 20},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, broker -----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# A dead Redis must cost a fraction of a second, never a hang.
REDIS_CONNECT_TIMEOUT_SECONDS = env.float("REDIS_CONNECT_TIMEOUT_SECONDS", default=0.3)
REDIS_READ_TIMEOUT_SECONDS = env.float("REDIS_READ_TIMEOUT_SECONDS", default=0.5)
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="llmapp")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": REDIS_READ_TIMEOUT_SECONDS,
                "CONNECTION_POOL_KWARGS": {"health_check_interval": 30},
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
                        # The layer blocks up to 5 s in BZPOPMIN by design; the read timeout must
                        # stay above that or every idle receive would fail.
                        "socket_timeout": 10,
                    }
                ],
                "prefix": f"{CACHE_KEY_PREFIX}:asgi",
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
# Without a broker, tasks run in-process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
    "socket_timeout": 2,
    "visibility_timeout": 3600,
}
# Publishing happens after a request's commit: a dead broker must not hold the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- REST framework and OpenAPI ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsTenantMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "EXCEPTION_HANDLER": "llmapp.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "llmapp API",
    "DESCRIPTION": "Multi-tenant LLM chat backend with versioned prompts and conversation memory.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets come from drf-spectacular-sidecar: served locally, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "llmapp.openapi.add_error_responses",
    ],
}

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"
API_KEY_LAST_USED_RESOLUTION_SECONDS = env.int("API_KEY_LAST_USED_RESOLUTION_SECONDS", default=60)
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- The model (llmapp/llm) --------------------------------------------------------------------
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="") or None
LLM_DEFAULT_MODEL = env.str("LLM_DEFAULT_MODEL", default="claude-sonnet-4-6")
LLM_DEFAULT_MAX_TOKENS = env.int("LLM_DEFAULT_MAX_TOKENS", default=1024)
LLM_CONNECT_TIMEOUT_SECONDS = env.float("LLM_CONNECT_TIMEOUT_SECONDS", default=5.0)
LLM_FIRST_TOKEN_TIMEOUT_SECONDS = env.float("LLM_FIRST_TOKEN_TIMEOUT_SECONDS", default=30.0)
LLM_TOTAL_TIMEOUT_SECONDS = env.float("LLM_TOTAL_TIMEOUT_SECONDS", default=300.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
# The SDK's HTTP transport: "httpx" (the SDK's default) or "aiohttp" (the SDK's
# DefaultAioHttpClient: about 0.7x the CPU per streamed reply, but no TCP keepalive and a DNS or
# pool wait bounded only by the first-token timeout; see bench/README.md).
LLM_HTTP_TRANSPORT = env.str("LLM_HTTP_TRANSPORT", default="httpx")
# USD per million tokens. LLM_PRICING_JSON (same shape) overrides or adds models.
LLM_PRICING = {
    "claude-opus-4-6": {"input": 5.0, "output": 25.0, "cache_write": 6.25, "cache_read": 0.5},
    "claude-sonnet-4-6": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.3},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_write": 1.25, "cache_read": 0.1},
}
LLM_PRICING.update(json.loads(env.str("LLM_PRICING_JSON", default="{}")))
# Context window per model, in tokens; LLM_CONTEXT_WINDOWS_JSON overrides or adds models.
LLM_CONTEXT_WINDOWS = {
    "claude-opus-4-6": 200_000,
    "claude-sonnet-4-6": 200_000,
    "claude-haiku-4-5": 200_000,
}
LLM_CONTEXT_WINDOWS.update(json.loads(env.str("LLM_CONTEXT_WINDOWS_JSON", default="{}")))
LLM_DEFAULT_CONTEXT_WINDOW = env.int("LLM_DEFAULT_CONTEXT_WINDOW", default=200_000)

# --- Prompts (prompts/) ------------------------------------------------------------------------
# The active-prompt cache is invalidated by epoch on every change; the TTL only bounds memory.
PROMPT_CACHE_TTL_SECONDS = env.int("PROMPT_CACHE_TTL_SECONDS", default=86400)
# After a cache failure, a process reads prompts from the database for this long before retrying.
PROMPT_CACHE_RETRY_SECONDS = env.float("PROMPT_CACHE_RETRY_SECONDS", default=5.0)

# --- Memory (memory/) --------------------------------------------------------------------------
# Context budget in tokens; 0 derives it per model: context window - the reply's max_tokens,
# less the estimator's safety margin.
MEMORY_CONTEXT_BUDGET_TOKENS = env.int("MEMORY_CONTEXT_BUDGET_TOKENS", default=0)
# Summarise when the unsummarised part reaches this many messages ...
MEMORY_SUMMARY_TRIGGER_MESSAGES = env.int("MEMORY_SUMMARY_TRIGGER_MESSAGES", default=60)
# ... or when a turn's context reaches this share of the budget.
MEMORY_SUMMARY_TRIGGER_BUDGET_SHARE = env.float("MEMORY_SUMMARY_TRIGGER_BUDGET_SHARE", default=0.5)
# The newest messages a summary never covers (they stay verbatim in the window).
MEMORY_KEEP_RECENT = env.int("MEMORY_KEEP_RECENT", default=20)
# Bound on the tail of messages the context builder reads (its cost must not grow with history).
MEMORY_WINDOW_MAX_MESSAGES = env.int("MEMORY_WINDOW_MAX_MESSAGES", default=200)
MEMORY_SUMMARY_MAX_TOKENS = env.int("MEMORY_SUMMARY_MAX_TOKENS", default=1024)
# Initial multiplier on the local token estimate; calibration only raises it, up to the max.
MEMORY_TOKEN_MARGIN = env.float("MEMORY_TOKEN_MARGIN", default=1.1)
MEMORY_TOKEN_MARGIN_MAX = env.float("MEMORY_TOKEN_MARGIN_MAX", default=2.0)
# Model for summaries; empty = the conversation's model (else LLM_DEFAULT_MODEL).
MEMORY_SUMMARY_MODEL = env.str("MEMORY_SUMMARY_MODEL", default="")
# Summariser task: retries (exponential backoff with jitter, capped) and time limits.
MEMORY_SUMMARY_MAX_RETRIES = env.int("MEMORY_SUMMARY_MAX_RETRIES", default=5)
MEMORY_SUMMARY_RETRY_BACKOFF_MAX_SECONDS = env.int(
    "MEMORY_SUMMARY_RETRY_BACKOFF_MAX_SECONDS", default=300
)
MEMORY_SUMMARY_SOFT_TIME_LIMIT_SECONDS = env.int(
    "MEMORY_SUMMARY_SOFT_TIME_LIMIT_SECONDS", default=120
)
MEMORY_SUMMARY_TIME_LIMIT_SECONDS = env.int("MEMORY_SUMMARY_TIME_LIMIT_SECONDS", default=150)
# Memory tasks run on their own queue (kept beside any routes defined elsewhere).
CELERY_TASK_ROUTES = {
    **globals().get("CELERY_TASK_ROUTES", {}),
    "memory.tasks.*": {"queue": "memory"},
}

# --- Rate limits, quotas and budgets (tenants/limits) ---------------------------------------------
# Limits are per RATE_LIMIT_WINDOW_SECONDS (a minute by default); each Organization can override
# them in the admin (an empty field means "this default"; 0 means "no limit").
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATE_LIMIT_WINDOW_SECONDS = env.float("RATE_LIMIT_WINDOW_SECONDS", default=60.0)
RATE_LIMIT_REQUESTS_PER_MINUTE = env.int("RATE_LIMIT_REQUESTS_PER_MINUTE", default=600)
RATE_LIMIT_USER_REQUESTS_PER_MINUTE = env.int("RATE_LIMIT_USER_REQUESTS_PER_MINUTE", default=120)
RATE_LIMIT_TOKENS_PER_MINUTE = env.int("RATE_LIMIT_TOKENS_PER_MINUTE", default=200_000)
RATE_LIMIT_MAX_CONCURRENT_STREAMS = env.int("RATE_LIMIT_MAX_CONCURRENT_STREAMS", default=8)
RATE_LIMIT_MONTHLY_TOKEN_BUDGET = env.int("RATE_LIMIT_MONTHLY_TOKEN_BUDGET", default=0)
# open: a per-process in-memory limiter takes over while Redis is down; closed: 503.
RATE_LIMIT_FAIL_MODE = env.str("RATE_LIMIT_FAIL_MODE", default="open")
if RATE_LIMIT_FAIL_MODE not in ("open", "closed"):
    raise ImproperlyConfigured("RATE_LIMIT_FAIL_MODE must be 'open' or 'closed'.")
# A concurrency slot whose holder died is freed after this long; it must outlast any generation.
RATE_LIMIT_LEASE_TTL_SECONDS = env.float(
    "RATE_LIMIT_LEASE_TTL_SECONDS", default=LLM_TOTAL_TIMEOUT_SECONDS + 30
)
# After a Redis failure, skip Redis for this long so that every request does not pay a timeout.
RATE_LIMIT_REDIS_RETRY_SECONDS = env.float("RATE_LIMIT_REDIS_RETRY_SECONDS", default=2.0)
RATE_LIMIT_REDIS_POOL_SIZE = env.int("RATE_LIMIT_REDIS_POOL_SIZE", default=32)
RATE_LIMIT_KEY_PREFIX = env.str("RATE_LIMIT_KEY_PREFIX", default="rl")
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["tenants.ratelimit.throttles.TenantRateThrottle"]
# Copies the RateLimit-Policy / RateLimit fields of the decision onto every limited response.
MIDDLEWARE.insert(1, "tenants.ratelimit.middleware.RateLimitHeadersMiddleware")

# --- Chat (conversations/) ------------------------------------------------------------------------
# A message longer than this (in characters) is refused with 413 content_too_large.
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=32_000)
# SSE comment lines sent this often while the model is slow to start (proxies drop idle streams).
CHAT_SSE_KEEPALIVE_SECONDS = env.float("CHAT_SSE_KEEPALIVE_SECONDS", default=10.0)
# A turn claim older than this is treated as left by a crashed process and may be taken over;
# it must exceed the longest legitimate turn (the model's total timeout plus storing).
CHAT_TURN_STALE_SECONDS = env.int(
    "CHAT_TURN_STALE_SECONDS", default=int(LLM_TOTAL_TIMEOUT_SECONDS) + 60
)
# WebSocket deltas are coalesced for this long, or until this many characters are pending.
CHAT_WS_BATCH_MS = env.int("CHAT_WS_BATCH_MS", default=25)
CHAT_WS_BATCH_CHARS = env.int("CHAT_WS_BATCH_CHARS", default=512)
# Automatic titles: the first user message cut on a word boundary at this length.
CHAT_TITLE_MAX_CHARS = env.int("CHAT_TITLE_MAX_CHARS", default=60)

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
LOGGING_CONFIG = None  # llmapp.logging configures stdlib logging and structlog together.
from llmapp.logging import configure_logging  # noqa: E402

configure_logging(level=LOG_LEVEL, fmt=LOG_FORMAT)

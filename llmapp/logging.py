"""structlog and stdlib logging, configured together.

JSON lines in production, readable console lines in debug. ``request_id`` (and whatever else a
request binds, such as ``org`` and ``user``) is carried by structlog's contextvars, so every line
of a request names it, whichever logger wrote it.
"""

import logging
import logging.config

import structlog

_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(*, level: str = "INFO", fmt: str = "json") -> None:
    """Route stdlib and structlog records through one formatter writing to stderr."""
    renderer = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structlog": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "foreign_pre_chain": _SHARED_PROCESSORS,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,
                        renderer,
                    ],
                }
            },
            "handlers": {
                "default": {"class": "logging.StreamHandler", "formatter": "structlog"},
            },
            "root": {"handlers": ["default"], "level": level},
            "loggers": {
                # The access log below replaces these; they would log every request twice.
                "django.server": {"level": "WARNING"},
                "django.request": {"level": "ERROR"},
                "daphne": {"level": "WARNING"},
                "django.channels.server": {"level": "WARNING"},
                "uvicorn.access": {"level": "WARNING"},
                "httpx": {"level": "WARNING"},
                "httpx2": {"level": "WARNING"},
            },
        }
    )
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

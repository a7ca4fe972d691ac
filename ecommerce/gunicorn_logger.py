"""gunicorn's logger, made to obey the logging config for access lines.

gunicorn writes an access line whenever `accesslog`, `logconfig_dict` or another logging
setting is set, so with ecommerce/gunicorn.conf.py's `logconfig_dict` it built and wrote a
line per request even when `ACCESS_LOG=0` set `accesslog = None`; and with `accesslog = "-"`
it added its own plain handler besides the structlog one, so every request was logged twice.
The config now leaves `accesslog` unset and decides in `logconfig_dict`: the
`gunicorn.access` logger is at INFO (one structlog line per request) or above it (off).
This logger builds an access line only when that logger would emit it, so a disabled
access log costs nothing per request.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import glogging


class Logger(glogging.Logger):
    """Access lines exactly when the `gunicorn.access` logger is enabled for INFO."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # applies logconfig_dict, which sets gunicorn.access's level
        self._access_log_enabled = self.access_log.isEnabledFor(logging.INFO)

    @property
    def access_log_enabled(self) -> bool:
        return bool(getattr(self, "_access_log_enabled", False))

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.access_log_enabled:
            super().access(resp, req, environ, request_time)

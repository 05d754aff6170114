"""The server's access log, with credentials in the query string redacted.

The API refuses a token sent as `?token=…` (only the Authorization header counts), but aiohttp's
default access log writes the full request line, so the refused secret would land in the log for
anyone who reads it. Parameters whose name says credential, and any value that looks like one of
our tokens, are written as `REDACTED`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from bot.tokens import TOKEN_PREFIX

REDACTED = "REDACTED"
_SECRET_NAME = re.compile(r"token|key|secret|password|passwd|auth|bearer|signature|sig|jwt|session", re.IGNORECASE)


def redacted_path_qs(path: str, query_string: str) -> str:
    if not query_string:
        return path
    pairs = parse_qsl(query_string, keep_blank_values=True)
    safe = [
        (k, REDACTED if _SECRET_NAME.search(k) or v.startswith(TOKEN_PREFIX) or TOKEN_PREFIX in k else v)
        for k, v in pairs
    ]
    return f"{path}?{urlencode(safe)}"


class RedactingAccessLogger(AbstractAccessLogger):
    """`remote "METHOD path?query HTTP/x.y" status bytes seconds "user agent"`, credentials redacted."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %s %s %.3fs "%s"',
            request.remote or "-",
            request.method,
            redacted_path_qs(request.path, request.query_string),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )

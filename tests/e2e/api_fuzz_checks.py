"""A schemathesis check loaded by `test_api_fuzz.py` (`SCHEMATHESIS_HOOKS`): every error answer is
the documented error body, `{"error": {"code", "message"}}` and nothing else, with the HTTP
status of its code (`sequencer.api.errors.HTTP_STATUS`, which holds the watcher's codes too)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from sequencer.api.errors import HTTP_STATUS


@schemathesis.check
def error_in_the_documented_form(ctx: Any, response: Any, case: Any) -> bool | None:
    """Fails on an error answer that is not the one error body, or whose code has another status."""
    if response.status_code < 400:
        return None
    if case.path == "/health" and response.status_code == 503:
        return None  # a health report, documented as such
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code}, not JSON: {response.content[:200]!r}") from exc
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and set(body) == {"error"}
        and set(error) == {"code", "message"}
        and isinstance(error["code"], str)
        and isinstance(error["message"], str)
    ):
        raise AssertionError(f"{response.status_code} not in the error form: {body!r}")
    if HTTP_STATUS.get(error["code"]) != response.status_code:
        raise AssertionError(f"code {error['code']!r} answered with {response.status_code}")
    return True

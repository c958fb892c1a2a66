"""What the services' HTTP APIs (the sequencer's, the watcher's) share: one error body and an exact
OpenAPI document.

Every refusal is `{"error": {"code", "message"}}` (`ErrorBody`), including those no route sees:
an unknown path (404 `not_found`), a method the path does not take (405 `method_not_allowed`,
with `Allow`), a body that is not JSON or not UTF-8 or does not validate (400 `malformed`), and a
fault (500 `internal`, its details only in the log). `install_error_handlers` puts them on an app,
answered through the service's own `respond(code, message)` (`error_json`, or the sequencer's,
which counts its refusals by code).

FastAPI's OpenAPI model holds numeric bounds as floats, so a uint64 bound would read
`1.8446744073709552e+19`; `exact_openapi` turns every integral bound back into an integer. The
bounds of our schemas are powers of two or small integers, which a float holds exactly, so the
integers are the ones the server checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ERROR_STATUS: dict[str, int] = {
    "malformed": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,
    "internal": 500,
}
"""The codes of refusals every service makes, with their HTTP status."""

INTERNAL_MESSAGE = "internal error"
"""The message of a 500: what failed is in the service's log, not in the answer."""

_CODE_OF_STATUS = {status: code for code, status in ERROR_STATUS.items()}

Respond = Callable[[str, str], Response]
"""A service's answer to a refusal: `respond(code, message)`, with the code's HTTP status."""


class ErrorDetail(BaseModel):
    """What was refused, and why."""

    code: str
    """Machine-readable (docs/protocol.md section 9)."""
    message: str
    """For people."""


class ErrorBody(BaseModel):
    """`{"error": {"code": ..., "message": ...}}`: the body of every refusal."""

    error: ErrorDetail


def error_json(code: str, message: str, status: int | None = None) -> JSONResponse:
    """The error body of a refusal, with `status` (default: the code's, `ERROR_STATUS`)."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=ERROR_STATUS[code] if status is None else status)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": f"`{code}`"} for code, status in ERROR_STATUS.items()
}
"""The refusals any route may answer, for `FastAPI(responses=...)`."""


def validation_message(exc: RequestValidationError) -> str:
    """`field.path: what is wrong` for the first field at fault."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid request')}"


def install_error_handlers(app: FastAPI, respond: Respond) -> None:
    """Answer every refusal and fault of `app` in the one error body, through `respond`."""

    async def http_error(_: Request, exc: HTTPException) -> Response:
        code = _CODE_OF_STATUS.get(exc.status_code, "malformed" if exc.status_code < 500 else "internal")
        response = respond(code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        return respond("malformed", validation_message(exc))

    async def fault(_: Request, exc: Exception) -> Response:
        return respond("internal", INTERNAL_MESSAGE)  # Starlette logs it, then re-raises it

    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, fault)


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _integral_bounds(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: int(value)
            if key in _BOUNDS and isinstance(value, float) and value.is_integer()
            else _integral_bounds(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_integral_bounds(item) for item in node]
    return node


def exact_openapi(app: FastAPI) -> None:
    """Make `app`'s OpenAPI document give its integer bounds as integers (module docstring)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _integral_bounds(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

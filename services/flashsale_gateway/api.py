"""The FastAPI side of the public port: orders, and the OpenAPI document of EVERY public route.

The hot routes are declared here too, calling the same HotRoutes methods as the front layer, so the
document describes the real contract (and schemathesis tests it). Every error is JSON
`{"error", "message"}`: FastAPI's own 404/405/422 answers are replaced, never HTML, never a 500 for
bad input.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from fastapi import FastAPI, Header, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from flashsale_gateway import answers, payment, schemas
from flashsale_gateway.answers import Answer
from flashsale_gateway.asgi import BodyCutShort, BodyTooLarge
from flashsale_gateway.hot import HotRoutes
from flashsale_gateway.orders import LookupUnavailable
from flashsale_gateway.parsing import MAX_BODY_BYTES
from flashsale_gateway.runtime import Runtime
from flashsale_sale import tokens

ERROR_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}
_bearer = HTTPBearer(
    auto_error=False,
    description="a user token from the shop's login, `v1.<user>.<exp>.<sig>`; on the pay route only the"
    " shop's payment service's credential, `p1.<namespace/name>.<exp>.<sig>`",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def _error(description: str, retry_after: bool | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"model": schemas.ErrorBody, "description": description}
    if retry_after is not None:
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer", "minimum": 1}, "required": retry_after,
                            "description": "seconds to wait before trying again"}
        }  # fmt: skip
    return response


def _to_response(answer: Answer) -> Response:
    return Response(answer.body, answer.status, answer.header_map())


def _owner(runtime: Runtime, credentials: HTTPAuthorizationCredentials | None) -> str | Answer:
    """The user a bearer token vouches for, or the 401 answer for a missing or invalid one."""
    if credentials is None:
        return answers.MISSING_TOKEN
    try:
        return tokens.verify(runtime.user_token_key, credentials.credentials)
    except tokens.InvalidToken as invalid:
        return answers.unauthorized(str(invalid))


def build_api(runtime: Runtime, hot: HotRoutes) -> FastAPI:
    app = FastAPI(
        title="FlashSale gateway",
        version="1",
        summary=f"The data path of the sale {runtime.settings.sale_name!r}",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served on the admin port (flashsale_gateway.admin), not here
        # A stray trailing slash is an unknown path (404 in JSON), not a 307 to a URL built from the
        # client's own Host header and the pod's scheme.
        redirect_slashes=False,
    )
    _install_error_handlers(app)
    limit = runtime.settings.per_user_limit

    @app.get(
        "/",
        response_class=Response,
        summary="The sale page (static, cacheable by a CDN)",
        responses={
            200: {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}},
            304: {"description": "not modified (If-None-Match matched the ETag)"},
        },
    )
    async def sale_page(if_none_match: Annotated[str | None, Header()] = None) -> Response:
        return _to_response(hot.page(if_none_match.encode() if if_none_match is not None else None))

    @app.get(
        "/status.js",
        response_class=Response,
        summary="The status as a tiny script (never cached)",
        responses={
            200: {"description": "script", "content": {"text/javascript": {"schema": {"type": "string"}}}}
        },
    )
    async def status_script() -> Response:
        return _to_response(hot.status_js())

    @app.get(
        "/api/status",
        response_model=schemas.SaleStatus,
        summary="The sale's state; the order path only while live",
    )
    async def status() -> Response:
        return _to_response(hot.status_json())

    @app.post(
        "/api/buy/{orderKey}",
        status_code=202,
        response_model=schemas.Reservation,
        summary="Buy: reserve up to the per-user limit (the path is the order path from the status)",
        responses={
            401: _error("missing, malformed, forged or expired token"),
            404: _error("not the live order path (or the sale does not take orders)"),
            409: _error("less stock left than the quantity asked"),
            410: _error("sold out"),
            413: _error("body too large"),
            422: _error("malformed body"),
            429: _error("per-user rate limit", retry_after=True),
            503: _error("shed beyond the admission rate, or the gate cannot answer", retry_after=False),
        },
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {  # or no body at all: quantity 1
                            "type": "object",
                            "properties": {"quantity": {"type": "integer", "minimum": 1, "maximum": limit}},
                            "required": ["quantity"],
                            "additionalProperties": False,
                        }
                    }
                },
            }
        },
    )
    async def buy(orderKey: str, request: Request, _: Bearer = None) -> Response:
        async def body() -> bytes:
            content = b""
            try:
                async for chunk in request.stream():
                    content += chunk
                    if len(content) > MAX_BODY_BYTES:
                        raise BodyTooLarge
            except ClientDisconnect as gone:
                raise BodyCutShort from gone
            return content

        authorization = request.headers.get("authorization")
        encoded = authorization.encode("latin-1") if authorization is not None else None
        return _to_response(await hot.buy(request.url.path, encoded, body))

    @app.get(
        "/api/orders/{reservationId}",
        response_model=schemas.OrderStatus,
        summary="A reservation's state (its owner's token only)",
        responses={
            401: _error("missing or invalid token"),
            404: _error("no such reservation for this user"),
            503: _error("the stores cannot answer right now"),
        },
    )
    async def order(reservationId: str, credentials: Bearer = None) -> Response:
        user = _owner(runtime, credentials)
        if isinstance(user, Answer):
            return _to_response(user)
        try:
            found = await runtime.find_order(reservationId, user)
        except LookupUnavailable:
            return _to_response(answers.UNAVAILABLE)
        if found is None:
            return _to_response(answers.NOT_FOUND)
        return _to_response(answers.json_answer(200, found.payload(), "ok"))

    @app.post(
        "/api/orders/{reservationId}/pay",
        response_model=schemas.Payment,
        summary="Pay an order: the shop's payment service only (its credential `p1.<ns/name>.<exp>.<sig>`)",
        responses={
            401: _error("missing or invalid payment credential (or another sale's)"),
            403: _error("a user token: shoppers cannot mark orders paid"),
            404: _error("no such order in this sale"),
            409: _error("`expired`, or `not_ordered_yet` (with Retry-After)", retry_after=False),
            503: _error("the stores cannot answer right now"),
        },
    )
    async def pay(reservationId: str, credentials: Bearer = None) -> Response:
        credential = None if credentials is None else credentials.credentials
        refused = payment.authorize(runtime.payment_key, runtime.user_token_key, credential)
        if refused is not None:
            return _to_response(refused)
        try:
            outcome = await runtime.pay(reservationId)
        except LookupUnavailable:
            return _to_response(answers.UNAVAILABLE)
        return _to_response(payment.answer(outcome, reservationId))

    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
    return app


def _document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with its 422 shape replaced by ours: every error here is {error, message}."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        error_ref = {"$ref": "#/components/schemas/ErrorBody"}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = {"application/json": {"schema": error_ref}}
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = document
    return app.openapi_schema


def _install_error_handlers(app: FastAPI) -> None:
    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = ERROR_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse({"error": code, "message": message}, exc.status_code, headers=exc.headers)

    async def invalid_request(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse(
            {"error": "invalid_request", "message": f"{where}: {first.get('msg', 'invalid')}"}, 422
        )

    async def internal(_: Request, exc: Exception) -> Response:
        if isinstance(exc, asyncio.CancelledError):
            raise exc
        return JSONResponse({"error": "internal", "message": "internal error"}, 500)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, internal)

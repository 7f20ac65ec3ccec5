"""The answers of the routes that carry the crowd, shared by the plain ASGI front and the FastAPI twins.

The front layer serves them before any framework routing; FastAPI declares the same routes (for the
OpenAPI document, and for anyone mounting the API alone) and calls these same methods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Final

from flashsale_gateway import answers, page
from flashsale_gateway.answers import Answer, raw_answer
from flashsale_gateway.asgi import BodyCutShort, BodyTooLarge
from flashsale_gateway.buy import BuyPath
from flashsale_gateway.state import StatusBoard
from flashsale_sale.settings import GatewaySettings

JSON_TYPE: Final = b"application/json"
NO_STORE: Final = (b"cache-control", b"no-store")


class HotRoutes:
    def __init__(self, settings: GatewaySettings, board: StatusBoard, buy: BuyPath, order_path: str) -> None:
        self._board = board
        self._buy = buy
        self.order_path = order_path
        body = page.render_page(settings)
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        cache = (b"cache-control", f"public, max-age={settings.page_max_age_seconds}".encode())
        etag = (b"etag", self.etag)
        self._page = raw_answer(200, body, page.PAGE_CONTENT_TYPE.encode(), "page", cache, etag)
        self._not_modified = Answer(304, b"", (cache, etag), "not_modified")
        self._status_source = b""
        self._status_json = answers.NOT_FOUND
        self._status_js = answers.NOT_FOUND
        self._refresh_status()

    def page(self, if_none_match: bytes | None) -> Answer:
        if if_none_match is not None and _matches(if_none_match, self.etag):
            return self._not_modified
        return self._page

    def status_json(self) -> Answer:
        if self._board.status_json is not self._status_source:
            self._refresh_status()
        return self._status_json

    def status_js(self) -> Answer:
        if self._board.status_json is not self._status_source:
            self._refresh_status()
        return self._status_js

    def early(self, path: str, authorization: bytes | None) -> Answer | None:
        """The answers that need neither the body nor a token check: 404 off the live path, 410 sold out."""
        board = self._board
        if path != self.order_path or not board.accepting:
            return answers.NOT_FOUND
        if board.sold_out:
            return self._buy.sold_out_answer(authorization)
        return None

    @property
    def buy_path(self) -> BuyPath:
        """The rest of the buy path, once `early` had nothing to say (the front layer calls it directly)."""
        return self._buy

    async def buy(
        self, path: str, authorization: bytes | None, body: Callable[[], Awaitable[bytes]]
    ) -> Answer:
        """404 unless the sale takes orders and this is exactly its order path; then the buy path."""
        answer = self.early(path, authorization)
        if answer is not None:
            return answer
        try:
            content = await body()
        except BodyTooLarge:
            return answers.TOO_LARGE
        except BodyCutShort:
            return answers.CUT_SHORT
        return await self._buy.attempt(authorization, content)

    def _refresh_status(self) -> None:
        """Rebuilt only when the board built a new status (an identity check per request)."""
        board = self._board
        self._status_source = board.status_json
        self._status_json = raw_answer(200, board.status_json, JSON_TYPE, "ok", NO_STORE)
        self._status_js = raw_answer(
            200, board.status_js, page.STATUS_JS_CONTENT_TYPE.encode(), "ok", NO_STORE
        )


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 weak comparison over a list of tags (`*` matches any)."""
    for candidate in if_none_match.split(b","):
        tag = candidate.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False

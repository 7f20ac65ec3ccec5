"""The response shapes of the public contract, for the OpenAPI document (the answers are built elsewhere)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="a stable code: not_found, unauthorized, sold_out, rate_limited, ...")
    message: str


class SaleStatus(BaseModel):
    sale: str
    state: Literal["scheduled", "live", "paused", "soldout", "ended"]
    startsAt: str
    endsAt: str
    remaining: int | None = Field(default=None, ge=0, description="units left, when known")
    orderPath: str | None = Field(description="the order path (absolute), only while live")


class Reservation(BaseModel):
    reservationId: str
    state: Literal["reserved"]
    quantity: int = Field(ge=1)
    expiresAt: str | None = Field(default=None, description="when an unpaid reservation lapses")


class OrderStatus(BaseModel):
    reservationId: str
    state: Literal["reserved", "ordered", "paid", "expired"]
    quantity: int = Field(ge=1)
    expiresAt: str


class Payment(BaseModel):
    reservationId: str
    state: Literal["paid"]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, bool]


class Unready(ErrorBody):
    checks: dict[str, bool]

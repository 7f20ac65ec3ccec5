"""Projected ServiceAccount tokens: requested through the TokenRequest API, refreshed like the kubelet.

A token is bound to the pod object (it stops working once the pod is deleted) and is renewed once
80% of its requested lifetime has passed, or after 24 hours, whichever comes first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

MAX_AGE = 24 * 3600.0
REFRESH_AT = 0.8  # of the requested lifetime


@dataclass(frozen=True)
class PodIdentity:
    """Whom a token is for: the pod's ServiceAccount, bound to the pod object itself."""

    namespace: str
    account: str
    pod: str
    uid: str


# (identity, audience or "" for the apiserver's, lifetime in seconds) -> (token, expiry in epoch seconds)
Requester = Callable[[PodIdentity, str, int], tuple[str, float]]


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float
    seconds: int  # the lifetime asked for

    def needs_refresh(self, now: float) -> bool:
        issued = self.expires_at - self.seconds
        return now >= issued + MAX_AGE or now >= self.expires_at - (1 - REFRESH_AT) * self.seconds


class TokenCache:
    """Tokens per (pod uid, audience, lifetime); safe to use from the main loop and the sync thread."""

    def __init__(self, request: Requester, clock: Callable[[], float]) -> None:
        self._request = request
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, int], Token] = {}

    def get(self, identity: PodIdentity, audience: str, seconds: int) -> str:
        key = (identity.uid, audience, seconds)
        with self._lock:
            token = self._tokens.get(key)
        if token is None or token.needs_refresh(self._clock()):
            value, expires_at = self._request(identity, audience, seconds)
            token = Token(value, expires_at, seconds)
            with self._lock:
                self._tokens[key] = token
        return token.value

    def forget(self, uid: str) -> None:
        with self._lock:
            self._tokens = {key: token for key, token in self._tokens.items() if key[0] != uid}

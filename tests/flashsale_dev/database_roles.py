"""The processes' database logins on the local platform, as a platform team would create them.

`flashsale migrate` (run here as the database's owner) creates the NOLOGIN group roles
`flashsale_gateway` and `flashsale_consumer` and grants them what each process does; the platform
then creates a login in each, with a password, and gives the operator their URLs. The owner's URL
stays the operator's own (the migration and the prewarm) and `DATABASE_URL` of `make up`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from flashsale_dev.components import Postgres
from flashsale_sale import db

GATEWAY_LOGIN = "sale_gateway"
CONSUMER_LOGIN = "sale_consumer"


@dataclass(frozen=True)
class DatabaseLogins:
    gateway_url: str
    consumer_url: str


def ensure_database_logins(postgres: Postgres) -> DatabaseLogins:
    """Migrates as the owner, then (re)creates both logins with fresh passwords; idempotent."""
    with postgres.connect() as conn:
        db.migrate(conn)
        gateway = create_login(conn, owner_url=postgres.url(), login=GATEWAY_LOGIN, role=db.GATEWAY_ROLE)
        consumer = create_login(conn, owner_url=postgres.url(), login=CONSUMER_LOGIN, role=db.CONSUMER_ROLE)
    return DatabaseLogins(gateway, consumer)


def create_login(
    conn: psycopg.Connection[tuple[object, ...]], *, owner_url: str, login: str, role: str
) -> str:
    """A login with a new password, member of `role` only; returns its URL (the owner's, another user)."""
    password = secrets.token_urlsafe(18)
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        statement = sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}")
        conn.execute(statement.format(sql.Identifier(login), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(login)))
    return with_user(owner_url, login, password)


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

"""Turns one sale's reservations (Kafka) into orders (PostgreSQL), idempotently, in batches."""

"""The sale gateway: the static page, the status script, the buy path, behind one ASGI app."""

"""`flashsale`: the one console script of the sale's processes and tools (usage: `flashsale_cli.main`).

The dispatcher sits above everything it starts: the contract package (`flashsale_sale`) and the
services (`flashsale_gateway`, `flashsale_consumer`) never import it, and it imports a service only
inside that service's own subcommand, so `--help` and `flashsale token` load no server.
"""

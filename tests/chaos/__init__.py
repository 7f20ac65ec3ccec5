"""The chaos tier: real processes and middleware, broken on purpose mid-sale (docs/settlement.md)."""

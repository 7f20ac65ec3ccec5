"""What every part of one sale shares: the contract (Redis keys, Lua, messages), tokens, settings, schema."""

"""What every part of one sale shares: the contract (Redis keys, Lua, messages), tokens, settings, schema."""

# The project's one version: the wheel's (pyproject reads it), every image's tag, the operator's defaults.
__version__ = "0.1.0"

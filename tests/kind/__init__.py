"""The kind tier: the operator journey on a kind cluster with the built images (conftest.py)."""

"""`python -m flashsale_dev.cluster.real_node`: undo what real nodes of dead runs left on the host."""

from flashsale_dev.cluster.real_node.undo import cleanup_stale

print(f"undone the journals of dead real nodes in slots: {cleanup_stale() or 'none'}")

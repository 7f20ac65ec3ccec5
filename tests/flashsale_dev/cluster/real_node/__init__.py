"""Real Kubernetes nodes on this machine (issue 17, first step): kubelet + containerd + runc + CNI +
kube-proxy, each node in its own network namespace joined to the host by a veth, with its own
containerd, cgroup root and data directory, as a kind node gets them from its container.

Every host side effect is written to the node's journal (host_state.py) before it is made, and the
node's stop - or `cleanup_stale()` after a SIGKILL of the runner - undoes it from the journal.
"""

from flashsale_dev.cluster.real_node.node import RealNode, RealNodeSpec

__all__ = ["RealNode", "RealNodeSpec"]

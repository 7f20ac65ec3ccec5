"""The service proxy: plays kube-proxy (userspace mode), feeds CoreDNS's hosts file and runs the
LoadBalancer controller for the local cluster, all from endpoints it computes itself (endpoints.py).

Modules, one job each: proxy (the main loop), watch (Services and Pods mirrored), forwarder (TCP on
ClusterIP:port), load_balancers (addresses, status and the nginx edge's sites).
"""

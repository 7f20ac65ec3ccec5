"""The node agent: plays kubelet for the nodes it is given, so pods of the project's images really run.

An honest test harness, not a kubelet (see docs/node-agent.md): a pod's containers of project images
(images.py) run as local processes on their own loopback address; other images are only simulated.

Modules, one job each: agent (the main loop), informer (pods in), writer (statuses out), heartbeat
(node status and Leases), pod and container (the runtime), stand_ins (containers without a process),
volumes (a pod's files and mounts, kept in sync), tokens (projected ServiceAccount tokens), mount_ns
(the wrapper that runs a process in its private mount namespace), atomic_writer (the kubelet's),
and the pure ones: envvars, service_env, dns_files, volume_payload, lifecycle, probes, pod_status,
node_status, addresses' naming. The node's storage provisioner is flashsale_dev.cluster.local_path.
"""

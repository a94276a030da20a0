"""Training as a service: jobs on a queue, a dispatcher, workers (local, remote, Ray), cost,
quotas and hyper-parameter sweeps."""

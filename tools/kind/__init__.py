"""kind support: the cluster config (cluster.yaml) and what `make` reads from a kind stack."""

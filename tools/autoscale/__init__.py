"""The autoscaling demo: step load against a stack while the HPA is sampled, then plotted."""

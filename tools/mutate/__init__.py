"""Mutation testing of config/, components/ and targets/ (`python -m tools.mutate`)."""

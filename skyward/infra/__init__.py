"""Turns a PoolSpec into running nodes: providers, stacks, the Pulumi engine."""

"""Methods: the Method interface, the one plug-in registry, the learned-method base, training and shard registration."""

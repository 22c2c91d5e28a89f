"""redline launch: one unchanged script, many processes and hosts, on keras.distribution over jax.distributed."""

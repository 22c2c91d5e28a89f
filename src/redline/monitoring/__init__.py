"""Monitoring a user's run as it goes: the Monitor callback, its system sampler and the run record it writes.

It reads the machine and the training loop; it never reconfigures anything.
"""

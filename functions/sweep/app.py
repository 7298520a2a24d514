"""Lambda function of the scheduled sweep (every bucket, every enabled control)."""

from bucketwarden.sweep_handler import lambda_handler_for_sweep

lambda_handler = lambda_handler_for_sweep()

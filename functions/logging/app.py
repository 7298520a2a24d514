"""Lambda function of the logging family (control: access-logging)."""

from bucketwarden.handler import lambda_handler_for

lambda_handler = lambda_handler_for("logging")

"""Lambda function of the encryption family (control: default-encryption)."""

from bucketwarden.handler import lambda_handler_for

lambda_handler = lambda_handler_for("encryption")

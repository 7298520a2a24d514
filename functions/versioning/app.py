"""Lambda function of the versioning family (control: versioning)."""

from bucketwarden.handler import lambda_handler_for

lambda_handler = lambda_handler_for("versioning")

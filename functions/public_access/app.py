"""Lambda function of the public-access family: bucket-public-access-block, public-acl."""

from bucketwarden.handler import lambda_handler_for

lambda_handler = lambda_handler_for("public-access")

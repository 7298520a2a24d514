"""Lambda function of the data-management family (controls: lifecycle, event-notifications,
replication-destination)."""

from bucketwarden.handler import lambda_handler_for

lambda_handler = lambda_handler_for("data-management")

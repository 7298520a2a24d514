"""Static website buckets: found when a public-access control is about to close a bucket.

Closing public access on a website bucket takes the site offline, so the finding says so and
tells the owner how to keep it public (an exemption) before anyone is surprised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOT_A_WEBSITE = "NoSuchWebsiteConfiguration"
# The IAM action of `read_website`: every family with a control that closes public access.
READ_ACTION = "s3:GetBucketWebsite"


def read_website(s3: S3Client, bucket: str) -> dict[str, Any] | None:
    """The bucket's website configuration, or None when it serves no website."""
    try:
        response = s3.get_bucket_website(Bucket=bucket)
    except ClientError as error:
        if error_code(error) == NOT_A_WEBSITE:
            return None
        raise
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def website_note(website: dict[str, Any], control_id: str, settings: Settings) -> str:
    """What a person must know before a website bucket is closed, and how to keep it open."""
    if "RedirectAllRequestsTo" in website:
        target = website["RedirectAllRequestsTo"].get("HostName", "another host")
        what = f"a static website redirecting to {target}"
    else:
        index = (website.get("IndexDocument") or {}).get("Suffix", "index.html")
        what = f"a static website (index document {index})"
    return (
        f"the bucket hosts {what}; closing public access takes it offline. To keep it public, "
        f"tag the bucket {settings.exempt_tag_key}={control_id} with "
        f"{settings.exempt_reason_key}=<why>; to serve it privately, put CloudFront with "
        "origin access control in front of it"
    )

"""Directory buckets (S3 Express One Zone): how to tell one, and its IAM actions.

Apart from the controls so that the event models may ask it too (see docs/architecture.md,
Directory buckets).
"""

from __future__ import annotations

# Every directory bucket's name (S3 Express One Zone) ends so, and no general purpose bucket's may.
DIRECTORY_BUCKET_SUFFIX = "--x-s3"


def is_directory_bucket(bucket: str | None) -> bool:
    """Is `bucket` a directory bucket? Its name says so: S3 reserves the suffix for them."""
    return bool(bucket) and str(bucket).endswith(DIRECTORY_BUCKET_SUFFIX)


def directory_action(action: str) -> str:
    """The IAM action of a directory bucket for a general purpose bucket's `s3:` action: the
    bucket policy and default encryption calls keep their names under the `s3express` prefix."""
    return "s3express:" + action.removeprefix("s3:")

"""Where finished histories go after the local disk: the `local` backend keeps
them there (the default); `s3` archives them to an S3-compatible store."""

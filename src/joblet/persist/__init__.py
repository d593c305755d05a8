"""The persist helper: job log and metric history on disk, served over gRPC."""

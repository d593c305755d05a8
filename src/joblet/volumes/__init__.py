"""Volumes: size-limited filesystem (ext4 on a loop device) and memory (tmpfs)
volumes that jobs mount at /volumes/NAME (VolumeService)."""

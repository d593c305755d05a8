"""`joblet setup` and `joblet certs issue`: the on-disk layout, certificates
and config files a fresh daemon and its clients need."""

"""Job networks: modes, custom networks, addresses, firewall and rate limits."""

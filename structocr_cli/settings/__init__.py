"""Where the key, profile and base URL come from: resolution and its precedence, the config
file and its writer, profiles, the OS keyring, bounded reads and the selection of keys."""

"""Identity: users and API tokens; who is calling."""

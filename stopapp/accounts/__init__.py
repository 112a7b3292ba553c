"""Staff accounts: users, roles, API tokens, and the rules of signing in."""

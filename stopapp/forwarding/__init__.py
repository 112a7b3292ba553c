"""Authorities and forwarding: who receives a report, and the email that carries it to them."""

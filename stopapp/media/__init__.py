"""Photo handling: validation, metadata stripping, re-encoding and storage."""

"""The RQ side: jobs (thin: load by id, call a service), the worker and the periodic jobs."""

"""Scheduled jobs: legacy-database sources, deliveries, aggregates, reconciliation, and more.

- `registry`: the built-in jobs by name ("module:function" and a default schedule);
- `locks`: one process at a time per job (PostgreSQL advisory lock, SQLite file lock);
- `runner`: one run of a job: the lock, the schedule tick claimed once, the `job_runs` row;
- `scheduler`: APScheduler 3.x firing every job of `routes.yaml` on its schedule;
- `builtin`: the deliveries and aggregates jobs.
"""

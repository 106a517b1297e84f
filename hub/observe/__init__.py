"""What the hub tells its operators about itself: metrics (`metrics`, `collect`), traces
(`tracing`) and structured logs (`logs`). See docs/observability.md."""

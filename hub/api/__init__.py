"""The REST API (`/api/v1`): one entry point for systems, the portal and scripts."""

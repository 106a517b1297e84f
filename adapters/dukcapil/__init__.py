"""Dukcapil NIK verification: the client (`client.DukcapilVerifier`), the wire format
(`wire`), and a sandbox of the service for tests and demos (`simulator`, `population`)."""

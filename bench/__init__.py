"""Benchmarks (`make bench`, `make bench-admin`, `make bench-web`); nothing here is deployed."""

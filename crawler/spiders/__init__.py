"""Spiders: each one knows one site and yields PageItems for the shared pipeline."""

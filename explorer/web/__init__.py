"""The explorer's web UI: server-rendered pages, no scripts, assets in this package."""

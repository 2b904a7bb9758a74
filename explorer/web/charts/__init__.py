"""Server-rendered SVG charts: no script, no external file, exact figures in ``<title>``."""

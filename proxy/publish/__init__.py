"""Getting each finished record to Redis: the publisher, and the spool it falls back to."""

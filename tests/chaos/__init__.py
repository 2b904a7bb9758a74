"""The chaos suite: real processes, real faults, a count of every record (RELIABILITY.md)."""

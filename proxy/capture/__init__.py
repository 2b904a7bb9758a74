"""What the record keeps of an exchange: bodies, forms, SSE streams and their assembly.

Everything here sees bytes only after they were relayed, and keeps no more of them
than the record's caps allow.
"""

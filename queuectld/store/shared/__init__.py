"""Store methods whose SQL is the same in every SQL backend, written once.

Their statements are portable SQL with `?` marks; each backend hands them to its
connection through a `Statements` object (`statements.py`) that speaks its
dialect's parameter style. What differs between dialects stays in the backend:
claims, inserts, deletions, counts, the schema.
"""

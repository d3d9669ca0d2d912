"""The archive and the exchanges between agencies (SQLAlchemy models, unit of work,
blob store, audit chain, delivery outbox, monthly reports).

Built by the exchange issue; until then this package holds its place in the layout
so that the import arrows (gateway -> exchange -> signing) are fixed from the start.
"""

__all__: list[str] = []

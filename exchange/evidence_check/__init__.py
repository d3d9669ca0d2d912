"""The standalone checker shipped in every evidence package as ``verify_evidence/``.

DocGate never imports these modules: ``exchange.evidence`` copies their bytes into the
ZIP, where ``python verify_evidence <package>`` runs them with the folder on sys.path
(so they import one another as top-level modules: ``import checks``). They use the
standard library only, plus the optional ``cryptography`` for the token's signature.
This ``__init__.py`` is not shipped.
"""

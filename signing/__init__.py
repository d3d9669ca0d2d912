"""PDF signing and verification on pyHanko: key providers, PAdES levels, stamps,
timestamp client. No HTTP server, no database: this package imports neither
``gateway`` nor ``exchange``."""

"""Historians' verdicts on candidate matches: the SQLite store, CSV exchange, transitivity
suggestions and the local review web app (``tables review``, ``tables verdicts``)."""

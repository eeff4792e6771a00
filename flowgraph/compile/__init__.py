"""Compile: a declared graph checked as a whole and turned into a ``ValidGraph`` — dependencies
resolved, subgraphs taken in, topological order, fingerprints and the Mermaid picture.

May import: ``declare`` and the layers below it.
"""

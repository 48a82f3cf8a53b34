"""Labelled digit patches shipped with the toolkit, and readers/writers/validators of annotation files."""

"""The conformance inspector: the specification's nine inspection items, run against any
implementation of the reporting or acquisition interface (cedx inspect)."""

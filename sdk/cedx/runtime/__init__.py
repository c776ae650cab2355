"""cedx.runtime — hand-written code that the generated SDK imports (types, errors, transport)."""

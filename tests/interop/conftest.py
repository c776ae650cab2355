# The reference platform and the enrolled clients of test_conformance, for the other modules here
# (module-scoped: each module gets its own platform).
from .test_conformance import cement, platform, power  # noqa: F401

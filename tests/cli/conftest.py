# The fixtures the command tests share with the packages they drive.
from ..inspect.conftest import source  # noqa: F401
from ..trust.conftest import openssl  # noqa: F401

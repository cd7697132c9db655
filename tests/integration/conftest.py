"""Fixtures that start real daemons in network namespaces (see ``fixtures/``)."""
from .fixtures.bird import bird_factory  # noqa: F401
from .fixtures.netns import netns  # noqa: F401

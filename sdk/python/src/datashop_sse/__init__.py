"""Publish Server-Sent Events through a ``@datashop/sse-gateway`` from Python services.

Standard library only, Python 3.8+::

    from datashop_sse import SSEPublisher

    sse = SSEPublisher("http://bff:3000/events", os.environ["SSE_TOKEN"], raise_on_error=False)
    sse.publish_log(workspace_id, workflow_id, {"level": "info", "line": "step 3 done"})
"""

from .errors import SSEPublishError
from .publisher import MAX_BATCH_EVENTS, PublishedEvent, SSEPublisher

__all__ = ["MAX_BATCH_EVENTS", "PublishedEvent", "SSEPublishError", "SSEPublisher", "__version__"]

__version__ = "0.1.0"

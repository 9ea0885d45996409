"""Real services for the topic and table steps: a local Kafka broker and PostgreSQL server."""

from ioc.app.services.state import ConnectionInfo, ServiceError, read_connection_info

__all__ = ["ConnectionInfo", "ServiceError", "read_connection_info"]

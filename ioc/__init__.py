"""The IOC dashboard: ioc.core below; streams, simulators, layouts on it; ioc.app on top."""

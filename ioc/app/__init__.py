"""The application on top: CLI, commands, settings, wiring, the demo and the dev services."""

"""One module per `ioc` sub-command: parse, read settings, build connections, call a wing."""

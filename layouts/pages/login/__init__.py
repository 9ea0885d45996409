"""The doors (/login, /logout, /display): plain Flask pages outside Dash, in the wall's style."""

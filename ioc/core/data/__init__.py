"""Reference tables shipped with the code (VN_AQI breakpoints) for the query and map steps."""

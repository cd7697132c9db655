"""Stand-ins for servers that cannot be installed on the test machines."""

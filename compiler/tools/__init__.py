"""Tools a deployer reads: inspect, explain and diff of compiled files."""

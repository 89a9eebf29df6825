"""The socket side: listeners, connections, request admission and one handler per op."""

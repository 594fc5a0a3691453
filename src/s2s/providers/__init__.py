"""Built-in providers. Each is imported only when ``s2s.new`` first asks for it."""

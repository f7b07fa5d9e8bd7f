"""talos.discover: read a node in maintenance mode and propose its inventory disk and MAC."""

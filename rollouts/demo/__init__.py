"""The demo of `make run`: its two releases, and real traffic behind a real nginx."""

"""Mock contributor packages for the engine's tests, each a package of its own so their
`inference` modules never collide in `sys.modules`."""

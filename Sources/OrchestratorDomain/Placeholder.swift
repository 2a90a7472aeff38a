// The workflow domain: pure Swift, no C imports, no I/O.

"""Crystallization: learned traces become python tool specs that redo their work with no model.
Generalization over traces, the generated code, its verification in a scratch copy, matching
goals at run time. Imports memory/ and everything below it; kernel/ and above import it."""

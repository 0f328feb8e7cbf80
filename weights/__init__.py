"""Package data: the shipped VGG19 weights, installed as ``jnst._weights`` (see README.md here)."""

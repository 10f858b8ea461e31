"""The tokenizer zoo: `list_models()`, `create(name)`, `from_pretrained(name, checkpoint)`."""
from zoo.registry import create, from_pretrained, list_models

__all__ = ["create", "from_pretrained", "list_models"]

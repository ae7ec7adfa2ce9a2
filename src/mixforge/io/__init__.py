"""Reading and writing mixforge's own files: atomic writes (`atomic`) and JSON Lines (`jsonl`)."""

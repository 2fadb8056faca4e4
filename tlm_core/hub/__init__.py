"""The data as a Hugging Face dataset: export with a card, push to the Hub, load back."""

"""The data as a Hugging Face dataset: export with a card, push to the Hub, load back."""

#: The dataset's configurations, in the order of the card (the first present is the default).
CONFIGS = ("pretrain", "measured", "demonstrations")
